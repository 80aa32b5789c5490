"""outcome_then_process: groups whose outcomes agree fill the places dynamic sampling left, in
order, and are scored only until the places are filled."""

from prmflow.config import Params
from prmflow.lm.sampling import Samples
from prmflow.rl.trainer import fill_by_process


class CountingScorer:
    """Step scores read from the text: 'a|b' scores steps a and b."""

    def __init__(self):
        self.scored = []

    def score(self, prompts, texts, finished=None):
        self.scored += texts
        return [[float(x) for x in t.split("|")] for t in texts]


def group(name: str, texts: list[str]) -> tuple[dict, Samples, list[bool]]:
    s = Samples([name], 2, texts=texts, prompt_ids=[[1]] * 2, completion_ids=[[2]] * 2, finished=[True] * 2)
    return {"question": name}, s, [False, False]


def rl(prompts_per_step: int):
    return Params.model_validate(
        {"rl": {"prompts_per_step": prompts_per_step, "group_size": 2, "process_mode": "step_delta", "weights": {"process": 0.5}}}
    ).rl


def test_fill_takes_groups_whose_steps_differ_in_order_and_stops_scoring_once_full():
    spare = [
        group("p0", ["1|1", "1|1"]),  # steps all equal: nothing to teach
        group("p1", ["1|0", "1|1"]),  # differ
        group("p2", ["0|0", "0|0"]),
        group("p3", ["1|0", "0|0"]),  # differ, but in the second chunk
    ]
    scorer = CountingScorer()
    fill, scored = fill_by_process(spare, 1, scorer, rl(prompts_per_step=2))
    assert [p["question"] for p, _ in fill] == ["p1"] and scored == 2.0
    assert scorer.scored == ["1|1", "1|1", "1|0", "1|1"]  # the second chunk was never scored

    fill, scored = fill_by_process(spare, 5, CountingScorer(), rl(prompts_per_step=2))
    assert [p["question"] for p, _ in fill] == ["p1", "p3"] and scored == 4.0
    assert fill[1][1].texts == ["1|0", "0|0"]  # each problem keeps its own group
