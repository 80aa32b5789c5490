"""The PRM as an MLflow pyfunc model ("models from code": MLflow runs this file to load it).

Input: a DataFrame with ``prompt`` and ``solution`` columns. Output: one list of step scores in
[0, 1] per row (:meth:`prmflow.prm.scorers.StepScorer.score`). The PRM directory is the ``prm``
artifact; ``reward/`` travels as code. Logged by :func:`prmflow.tracking.log_prm_model`.
"""

import mlflow
import pandas as pd


class PRMPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from prmflow.prm.scorers import load_scorer

        self.scorer = load_scorer(context.artifacts["prm"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> list[list[float]]:
        return self.scorer.score(list(model_input["prompt"]), list(model_input["solution"]))


mlflow.models.set_model(PRMPyfunc())
