import pytest
import torch

from reward.advantages import grpo_advantages, outcome_last_step, step_advantages, tokens_from_steps

S = 0.5 / (1 / 3) ** 0.5  # 0.8660254: deviation 0.5 over the unbiased std of [1,0,0,1] / [1,0,1,0]


def test_grpo_advantages_two_groups():
    # group 1 [1,0,0,1]: mean 0.5, unbiased var (4 * 0.25) / 3 = 1/3, std 0.57735 -> +-0.866
    # group 2 [1,1,1,1]: all equal -> zeros
    adv = grpo_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0]), 4)
    assert adv.tolist() == pytest.approx([S, -S, -S, S, 0, 0, 0, 0], abs=1e-5)


def test_grpo_advantages_uneven_group():
    # [3, 0, 0]: mean 1, deviations [2, -1, -1], unbiased var (4+1+1)/2 = 3, std 1.7320508
    adv = grpo_advantages(torch.tensor([3.0, 0.0, 0.0]), 3)
    assert adv.tolist() == pytest.approx([2 / 3**0.5, -1 / 3**0.5, -1 / 3**0.5], abs=1e-5)


def test_dr_grpo_only_centres():
    adv = grpo_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0]), 4, scale_by_std=False)
    assert adv.tolist() == pytest.approx([0.5, -0.5, -0.5, 0.5])


def test_grpo_advantages_shape_checks():
    with pytest.raises(ValueError):
        grpo_advantages(torch.zeros(5), 4)
    with pytest.raises(ValueError):
        grpo_advantages(torch.zeros(2, 2), 2)


def test_step_advantages_sum_and_min():
    # group 1: A = [1, 0, 1], B = [0]; all steps [1,0,1,0]: mean 0.5, unbiased std 0.57735
    #   r~ A = [S, -S, S], B = [-S]   (S = 0.866)
    #   sum: A suffix sums [S - S + S, -S + S, S] = [S, 0, S]; B [-S]
    #   min: A suffix minima [min(S,-S,S), min(-S,S), S] = [-S, -S, S]; B [-S]
    # group 2: C = [0.2, 0.6], D = [0.4]; mean 0.4, deviations [-0.2, 0.2, 0], var 0.08/2, std 0.2
    #   r~ C = [-1, 1], D = [0]; sum C [0, 1]; min C [-1, 1]; D [0]
    scores = [[1.0, 0.0, 1.0], [0.0], [0.2, 0.6], [0.4]]
    out = step_advantages(scores, 2, "sum")
    assert [len(s) for s in out] == [3, 1, 2, 1]
    flat = [v for s in out for v in s]
    assert flat == pytest.approx([S, 0, S, -S, 0, 1, 0], abs=1e-4)
    out = step_advantages(scores, 2, "min")
    flat = [v for s in out for v in s]
    assert flat == pytest.approx([-S, -S, S, -S, -1, 1, 0], abs=1e-4)


def test_step_advantages_delta_is_progress():
    # same groups: r~ A = [S, -S, S], B = [-S]; C = [-1, 1], D = [0]
    #   delta: A [S - 0, -S - S, S - (-S)] = [S, -2S, 2S]; B [-S]; C [-1, 2]; D [0]
    scores = [[1.0, 0.0, 1.0], [0.0], [0.2, 0.6], [0.4]]
    flat = [v for s in step_advantages(scores, 2, "delta") for v in s]
    assert flat == pytest.approx([S, -2 * S, 2 * S, -S, -1, 2, 0], abs=1e-4)


def test_own_credit_charges_every_wasted_step_where_delta_charges_the_first():
    """Reuse scores of one group: a solution with two dead steps in a row, and a direct one.
    Mean of the 7 scores 5/7 (centred only): used 2/7, dead -5/7. Progress credit charges the
    first dead step alone (-1) and credits the step after the run (+1); own credit charges both."""
    verbose, direct = [1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0]
    u, d = 2 / 7, -5 / 7
    delta = step_advantages([verbose, direct], 2, "delta", scale_by_std=False)
    assert delta == [pytest.approx([u, -1, 0, 1]), pytest.approx([u, 0, 0])]
    own = step_advantages([verbose, direct], 2, "own", scale_by_std=False)
    assert own == [pytest.approx([u, d, d, u]), pytest.approx([u, u, u])]


def test_delta_credit_does_not_pay_for_stopping_early():
    """Oracle prefix scores of one group: a long attempt that errs at its 4th step, and a short
    one that answers after 2 right steps. Min credit charges the long attempt's 3 right steps
    with its error (every step negative), and credits the short one: stopping early pays.
    Progress credit gives both the same first-step credit and charges the error step alone."""
    long, short = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0], [1.0, 1.0]
    m = step_advantages([long, short], 2, "min", scale_by_std=False)  # mean of the 8 step scores: 5/8
    assert m == [pytest.approx([-0.625] * 6), pytest.approx([0.375, 0.375])]
    d = step_advantages([long, short], 2, "delta", scale_by_std=False)
    assert d == [pytest.approx([0.375, 0, 0, -1, 0, 0]), pytest.approx([0.375, 0])]
    assert sum(d[0]) == pytest.approx(long[-1] - 0.625) and sum(d[1]) == pytest.approx(short[-1] - 0.625)


def test_step_advantages_without_std():
    # r~ = r - 0.5: A = [0.5, -0.5, 0.5], B = [-0.5]; sum A [0.5, 0, 0.5]; min A [-0.5, -0.5, 0.5]
    scores = [[1.0, 0.0, 1.0], [0.0]]
    assert step_advantages(scores, 2, "sum", scale_by_std=False) == [pytest.approx([0.5, 0.0, 0.5]), [-0.5]]
    assert step_advantages(scores, 2, "min", scale_by_std=False) == [pytest.approx([-0.5, -0.5, 0.5]), [-0.5]]


def test_step_advantages_empty_and_single_step_groups():
    # group 1 has one step reward overall -> zeros; group 2 has none -> []
    assert step_advantages([[0.7], [], [], []], 2, "min") == [[0.0], [], [], []]


def test_step_advantages_rejects_bad_input():
    with pytest.raises(ValueError):
        step_advantages([[1.0]], 2, "sum")
    with pytest.raises(ValueError):
        step_advantages([[1.0], [0.0]], 2, "max")


def test_tokens_from_steps():
    # step 0 covers tokens 0..1, step 1 covers 2..3, tokens 4..5 (answer line) get 0
    t = tokens_from_steps([0.5, -1.0], [1, 3], 6)
    assert t.dtype == torch.float32
    assert t.tolist() == [0.5, 0.5, -1.0, -1.0, 0.0, 0.0]
    assert tokens_from_steps([2.0], [0], 2).tolist() == [2.0, 0.0]
    assert tokens_from_steps([], [], 3).tolist() == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("values, ends", [([1.0, 2.0], [3, 3]), ([1.0], [6]), ([1.0], [-1]), ([1.0, 2.0], [1])])
def test_tokens_from_steps_rejects_bad_ends(values, ends):
    with pytest.raises(ValueError):
        tokens_from_steps(values, ends, 6)


def test_centred_step_credit_in_an_all_wrong_group_keeps_the_step_contrast_without_a_net_push():
    """Two wrong solutions, oracle step scores: one errs at step 0, one at step 2. Progress
    credit alone gives both the same negative total (a solution's credits add up to its last
    step's normalised score, and both end wrong): every sampled token of the group is pushed
    down on balance. Centred, each total is zero, and the right steps before the later error are
    still credited above the wrong ones."""
    early, late = [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]
    plain = step_advantages([early, late], 2, "delta", scale_by_std=False)
    assert sum(plain[0]) == pytest.approx(sum(plain[1])) == pytest.approx(-1 / 3)
    centred = step_advantages([early, late], 2, "delta", scale_by_std=False, center=True)
    # hand: mean 1/3; delta early [-1/3, 0, 0], late [2/3, 0, -1]; totals -1/3 each: +1/9 per step
    assert centred == [pytest.approx([-2 / 9, 1 / 9, 1 / 9]), pytest.approx([7 / 9, 1 / 9, -8 / 9])]
    assert sum(centred[0]) == pytest.approx(0.0) and sum(centred[1]) == pytest.approx(0.0)


def test_outcome_last_step_charges_stopping_short_as_much_as_slipping():
    """Oracle prefix scores of one all-wrong group: ``short`` writes 2 right steps and answers
    without the needed rest (no step of it is wrong, so nothing is charged); ``slip`` writes 4 and
    its 3rd is wrong. Progress credit alone pays the short one more (its total is its last score,
    1.0 against 0.0). Scored by its outcome, the short one's last step is 0.0: both totals are
    equal, and the short one is charged at the step after which it stopped."""
    short, slip = [1.0, 1.0], [1.0, 1.0, 0.0, 0.0]
    plain = step_advantages([short, slip], 2, "delta", scale_by_std=False)  # mean 4/6
    assert sum(plain[0]) == pytest.approx(1 / 3) and sum(plain[1]) == pytest.approx(-2 / 3)
    anchored = outcome_last_step([short, slip], [0.0, 0.0])
    assert anchored == [[1.0, 0.0], [1.0, 1.0, 0.0, 0.0]]
    d = step_advantages(anchored, 2, "delta", scale_by_std=False)  # mean 3/6: [1/2, -1], [1/2, 0, -1, 0]
    assert d == [pytest.approx([0.5, -1.0]), pytest.approx([0.5, 0.0, -1.0, 0.0])]
    assert sum(d[0]) == pytest.approx(sum(d[1]))


def test_outcome_last_step_leaves_empty_solutions_and_scores_a_right_one_1():
    assert outcome_last_step([[], [0.4, 0.7]], [1.0, 1.0]) == [[], [0.4, 1.0]]
    with pytest.raises(ValueError):
        outcome_last_step([[1.0]], [1.0, 0.0])
