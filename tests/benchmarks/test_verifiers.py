"""benchmarks/verifiers.py: which step scorer knows more than the policy (its arguments)."""

import doctest

import pytest

from benchmarks import verifiers


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
