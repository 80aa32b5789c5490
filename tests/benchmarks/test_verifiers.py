"""benchmarks/verifiers.py: which step scorer knows more than the policy (its arguments)."""

import doctest
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("verifiers", ROOT / "benchmarks/verifiers.py")
verifiers = importlib.util.module_from_spec(spec)
sys.modules["verifiers"] = verifiers
spec.loader.exec_module(verifiers)


def test_docstring_examples():
    assert doctest.testmod(verifiers).failed == 0


@pytest.mark.parametrize(
    "specs, message",
    [
        (["policy=models/base", "policy=models/champion"], "the name 'policy' is given twice"),
        (["=models/base"], "expected NAME=DIR"),
        (["prm="], "expected NAME=DIR"),
    ],
)
def test_bad_scorer_arguments_are_refused_by_name(specs, message):
    with pytest.raises(ValueError, match=message):
        verifiers.scorer_specs(specs)


def test_a_name_may_hold_an_equals_sign_in_its_path():
    assert verifiers.scorer_specs(["prm=runs/lr=1e-4/prm"]) == {"prm": "runs/lr=1e-4/prm"}


@pytest.mark.parametrize("argv, message", [([], "give at least one --scorer NAME=DIR"), (["--scorer", "models/base"], "expected NAME=DIR")])
def test_bad_arguments_are_a_usage_error_not_a_traceback(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        verifiers.main(["--policy", "models/base", *argv])
    assert e.value.code == 2
    assert message in capsys.readouterr().err
