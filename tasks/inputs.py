"""Stage ``inputs``: fingerprint what the pipeline reads from outside DVC (run every time).

Writes ``data/inputs/data.json`` (``data.path``, ``data.eval_path``, an HF dataset's commit),
``data/inputs/model.json`` (a local model folder's digest or an HF model's commit),
``data/inputs/completer.json`` (``label.completer``'s) and ``data/inputs/extra_eval.json``;
``curate``, ``warmstart``, ``label`` and ``evaluate`` depend on them
(:mod:`prmflow.inputs`). A file replaced in place, or a new dataset revision, changes its
fingerprint and re-runs the stages that read it; same content, same bytes, nothing re-runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from prmflow import workspace
from prmflow.config import load_params
from prmflow.errors import reported
from prmflow.inputs import completer_inputs, data_inputs, extra_eval_inputs, model_inputs
from prmflow.io import atomic_write_text
from tasks import exit_done


def write_if_changed(path: Path, obj: dict) -> bool:
    """Write ``obj`` as JSON unless the file already holds exactly that; returns whether it wrote."""
    text = json.dumps(obj, indent=2, sort_keys=True) + "\n"
    if path.exists() and path.read_text() == text:
        return False
    atomic_write_text(path, text)
    return True


def run(params, out_dir=workspace.INPUTS) -> dict[str, bool]:
    """Write the fingerprint files; ``{name: changed}``."""
    out = Path(out_dir)
    parts = {
        "data": data_inputs(params),
        "model": model_inputs(params),
        "completer": completer_inputs(params),
        "extra_eval": extra_eval_inputs(params),
    }
    return {name: write_if_changed(out / f"{name}.json", obj) for name, obj in parts.items()}


def main(argv: list[str] | None = None) -> None:
    with reported("inputs"):
        ap = argparse.ArgumentParser(
            prog="python -m tasks.inputs", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        ap.add_argument("--params", default="params.yaml")
        args = ap.parse_args(argv)
        changed = run(load_params(args.params))
        print("inputs: " + ", ".join(f"{k} {'changed' if v else 'unchanged'}" for k, v in changed.items()))


if __name__ == "__main__":
    main()
    exit_done()
