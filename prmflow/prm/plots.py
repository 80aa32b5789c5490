"""The PRM's plots: ROC and calibration of the learned PRM and of the policy-confidence baseline,
and best-of-N accuracy vs N; CSV files for ``dvc plots`` and their PNGs (MLflow artifacts)."""

from __future__ import annotations

from pathlib import Path

from prmflow.io import atomic_write_text
from prmflow.plots import Panel, csv_text, save
from prmflow.prm.evaluation import Chains, best_of_n_curve, calibration_rows, judged_steps, roc_curves

NAMES = {"prm": "learned PRM", "confidence": "policy confidence (baseline)"}


def write_plots(scores: dict, test: list[dict], chains: Chains, plots_dir) -> None:
    """``roc_<scorer>.csv``, ``calibration.csv`` and ``best_of_n.csv`` for ``dvc plots``, and
    their PNGs (``roc_calibration.png``, ``best_of_n.png``)."""
    plots_dir = Path(plots_dir)
    curves = roc_curves(scores, test, chains)
    for name, pts in curves.items():
        atomic_write_text(plots_dir / f"roc_{name}.csv", csv_text([{"fpr": f, "tpr": t} for f, t in pts], ["fpr", "tpr"]))
    calib = calibration_rows(scores, test, chains)
    atomic_write_text(plots_dir / "calibration.csv", csv_text(calib))
    judged = judged_steps(scores["prm"], test, chains)[2]
    save(
        plots_dir / "roc_calibration.png",
        Panel(
            f"Step ROC ({judged})",
            "false positive rate (bad steps called good)",
            "true positive rate",
            [(NAMES[n], [f for f, _ in p], [t for _, t in p]) for n, p in curves.items()],
            ylim=(0, 1.02),
            diagonal="chance",
        ),
        Panel(
            "Calibration",
            "step score (bin)",
            "fraction of steps that are good",
            [(NAMES[n], [r["score"] for r in calib], [r[n] for r in calib]) for n in scores],
            ylim=(0, 1.02),
            diagonal="perfectly calibrated",
        ),
    )
    if chains.texts:
        bon = best_of_n_curve(chains, {k: s["chains"] for k, s in scores.items()})
        atomic_write_text(plots_dir / "best_of_n.csv", bon)
        head, *rows = [line.split(",") for line in bon.splitlines()]
        col = {c: [float(r[i]) for r in rows] for i, c in enumerate(head)}
        rules = {"prm_min": "learned PRM (min step score)", "confidence_min": "policy confidence (min)", "majority": "majority vote"}
        save(
            plots_dir / "best_of_n.png",
            Panel(
                "Best-of-N on eval problems",
                "N (samples per problem)",
                "accuracy of the picked answer",
                [(label, col["n"], col[c]) for c, label in {**rules, "random": "random pick", "oracle": "any right (pass@N)"}.items()],
                ylim=(0, 1.02),
            ),
        )
