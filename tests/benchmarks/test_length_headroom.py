"""benchmarks/length_headroom.py: the task's length headroom and a policy's use of it."""

import doctest

import pytest

from benchmarks import length_headroom


def test_docstring_examples():
    assert doctest.testmod(length_headroom).failed == 0


def test_a_verbose_reference_against_the_direct_one():
    """Hand-counted: a=7;b=5;c=a*3;d=c-b;e=b+2;d=? has 3 derived steps, 1 of them (e) unneeded."""
    from prmflow.problems import synthetic

    q = "a=7;b=5;c=a*3;d=c-b;e=b+2;d=?"
    verbose, direct = synthetic.verbose_solution(q), "c=7*3=21\nd=21-5=16\n#### 16"
    assert verbose == "c=7*3=21\nd=21-5=16\ne=5+2=7\n#### 16"
    flags = [synthetic.oracle_unneeded_steps(q, t) for t in (verbose, direct)]
    assert flags == [[False, False, True], [False, False]]
    stats = length_headroom.length_stats([True, True], [len(verbose), len(direct)], flags)
    assert stats == {"accuracy": 1.0, "tokens": (len(verbose) + len(direct)) / 2, "steps": 2.5, "unneeded_share": 0.2}
    assert length_headroom.headroom([len(direct)], [len(verbose)]) == round(1 - len(direct) / len(verbose), 6)
    # the text-only dead-step flags find e too: nothing after it uses 7
    from reward.reuse import solution_used_steps

    used = [solution_used_steps(t) for t in (verbose, direct)]
    assert used == [[True, True, False], [True, True]]
    assert length_headroom.reuse_agreement(flags, used) == {"distractors_flagged": 1.0, "others_flagged": 0.0, "solutions_compared": 2}


def test_style_variation_by_hand():
    """Three groups of 4. A: styles mixed and both right once; B: mixed, only the verbose style
    right; C: one style, all wrong."""
    unneeded = [0, 0, 3, 3] + [0, 3, 3, 3] + [2, 2, 2, 2]
    right = [True, False, True, False] + [False, True, True, False] + [False] * 4
    assert length_headroom.style_variation(right, unneeded, 4) == {
        "groups": 3,
        "groups_with_a_right_sample": 2 / 3,
        "right_samples_differ_in_distractors": 1 / 3,  # only A: right samples with 0 and 3
        "groups_mixing_styles": 2 / 3,
        "direct_accuracy_in_mixed": 1 / 3,  # A's two direct samples and B's one: 1 right
        "verbose_accuracy_in_mixed": 3 / 5,  # A's two and B's three: 3 right
    }


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "give at least one --policy NAME=DIR"),
        (["--policy", "models/base"], "--policy 'models/base': expected NAME=DIR"),
        (["--policy", "a=x", "--problems", "0"], "--problems must be at least 1"),
    ],
)
def test_bad_arguments_are_a_usage_error_not_a_traceback(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        length_headroom.main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_the_chain_task_is_refused_it_has_no_unneeded_steps(capsys):
    with pytest.raises(SystemExit) as e:
        length_headroom.main(["--policy", "a=models/base"])  # the repo's params.yaml: data.task chain
    assert e.value.code == 2
    assert "data.task dag" in capsys.readouterr().err
