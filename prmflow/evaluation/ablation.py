"""Summaries of an RL ablation (outcome-only vs process-reward arms over seeds): pure functions.

Input per (arm, seed) run (:class:`ArmRun`): its learning curve (greedy accuracy on the RL eval
subset every ``rl.eval_every`` steps) and its final greedy results per eval problem (right or
not, tokens, steps, unneeded steps, difficulty). The questions answered, each with a 95%
interval over seeds *and* problems (:func:`two_level_interval`: seeds are resampled, then the
problems within each):

- how many RL steps an arm needs to reach the outcome-only arm's final accuracy (and which
  fraction of outcome-only's steps that is);
- final accuracy overall and on the hardest difficulty, and their paired difference from
  outcome-only (same seeds, same problems);
- reasoning length: greedy tokens and the share of unneeded steps (steps computing a variable
  the answer does not need, right or wrong: the dag task's distractors);
- the PRM's step AUC on the policy's own samples at the start and the end of RL (off-policy
  drift), where the run measured it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

BASELINE = "outcome_only"
LENGTH_WEIGHT = 0.2
"""Default weight of the group length term (:func:`reward.length.group_length_reward`) in the
length arms (``prmflow ablate --length-weight``): a fifth of the outcome's. Not tuned. Up to 1
(Kimi k1.5 adds the term unweighted) a right completion still always earns more than a wrong
one of its group: the term is in ``[-0.5, 0.5]`` and a wrong completion never gains from it."""
_LENGTH_KEY = "rl.weights.length_group"  # the length arms' overrides start so; set to the ablation's length weight

ARMS: dict[str, list[str]] = {
    "outcome_only": ["rl.weights.process=0.0"],
    "hybrid_seq": ["rl.process_mode=sequence"],
    "hybrid_step_min": ["rl.process_mode=step_min"],
    "oracle_step_min": ["rl.process_mode=step_min", "rl.process_scorer=oracle"],
    "outcome_length": ["rl.weights.process=0.0", f"rl.weights.length_group={LENGTH_WEIGHT}"],
    "hybrid_length": ["rl.process_mode=step_min", f"rl.weights.length_group={LENGTH_WEIGHT}"],
    "outcome_length_right": ["rl.weights.process=0.0", f"rl.weights.length_group_right={LENGTH_WEIGHT}"],
    "hybrid_step_sum": ["rl.process_mode=step_sum"],
    "hybrid_step_delta": ["rl.process_mode=step_delta"],
    "oracle_step_delta": ["rl.process_mode=step_delta", "rl.process_scorer=oracle"],
    "mc_step_delta": ["rl.process_mode=step_delta", "rl.process_scorer=mc"],
    "hybrid_step_delta_online": ["rl.process_mode=step_delta", "rl.prm_online_lr=0.01"],
    "oracle_step_delta_failures": [
        "rl.process_mode=step_delta",
        "rl.process_scorer=oracle",
        "rl.filter_groups_by=process",
        "rl.center_step_credit=true",
    ],
    "oracle_step_delta_fill": [
        "rl.process_mode=step_delta",
        "rl.process_scorer=oracle",
        "rl.filter_groups_by=outcome_then_process",
        "rl.center_step_credit=true",
    ],
    "oracle_step_delta_centred": ["rl.process_mode=step_delta", "rl.process_scorer=oracle", "rl.center_step_credit=true"],
    "oracle_needed_step_delta_centred": ["rl.process_mode=step_delta", "rl.process_scorer=oracle_needed", "rl.center_step_credit=true"],
    "reuse_step_delta_centred": ["rl.process_mode=step_delta", "rl.process_scorer=reuse", "rl.center_step_credit=true"],
    "reuse_step_own_centred": ["rl.process_mode=step_own", "rl.process_scorer=reuse", "rl.center_step_credit=true"],
    "reuse_step_own_centred_unscaled": [
        "rl.process_mode=step_own",
        "rl.process_scorer=reuse",
        "rl.center_step_credit=true",
        "rl.step_scale_by_std=false",
    ],
    "reuse_step_own_keep": [
        "rl.process_mode=step_own",
        "rl.process_scorer=reuse",
        "rl.center_step_credit=true",
        "rl.filter_groups_by=process",
    ],
    "oracle_step_delta_fill_raw": [
        "rl.process_mode=step_delta",
        "rl.process_scorer=oracle",
        "rl.filter_groups_by=outcome_then_process",
    ],
    "hybrid_step_delta_fill": [
        "rl.process_mode=step_delta",
        "rl.filter_groups_by=outcome_then_process",
        "rl.center_step_credit=true",
    ],
    "oracle_step_delta_fill_last": [
        "rl.process_mode=step_delta",
        "rl.process_scorer=oracle",
        "rl.filter_groups_by=outcome_then_process",
        "rl.center_step_credit=true",
        "rl.outcome_last_step=true",
    ],
    "hybrid_step_delta_fill_last": [
        "rl.process_mode=step_delta",
        "rl.filter_groups_by=outcome_then_process",
        "rl.center_step_credit=true",
        "rl.outcome_last_step=true",
    ],
    "mc_step_delta_fill": [
        "rl.process_mode=step_delta",
        "rl.process_scorer=mc",
        "rl.filter_groups_by=outcome_then_process",
        "rl.center_step_credit=true",
    ],
    "hybrid_seq_decay": ["rl.process_mode=sequence", "rl.process_weight_schedule=linear_decay"],
    "oracle_step_min_decay": ["rl.process_mode=step_min", "rl.process_scorer=oracle", "rl.process_weight_schedule=linear_decay"],
}
"""Overrides per arm, on top of params.yaml and the run's overrides. The process arms (those
not setting ``rl.weights.process=0.0``) get the ablation's process weight
(:func:`arm_overrides`), which must be > 0 (``flows.ablate.check_arms`` refuses 0);
``oracle_step_min`` scores steps with the synthetic task's oracle (a perfect PRM: the upper
bound of what process rewards can give); ``hybrid_step_sum`` is a known-collapsing reference
(DeepSeekMath's sum credit), not run by default. ``*_step_delta`` credit each step with the
change its score makes (PAV's progress, :func:`reward.advantages.delta_credit`): on the dag task
min credit collapsed, the oracle's too (reports/ablation), since it charges the right steps
before an error and so pays for answering early; not run by default. ``mc_step_delta`` is
VinePPO-style: Monte-Carlo values of each step prefix sampled from the current policy
(:mod:`prmflow.rl.mc_values`, no learned PRM), credited by progress; ``*_online`` update the
PRM's head on each step's outcomes before it scores them (PRIME-style, ``rl.prm_online_lr``). ``oracle_step_delta_failures``
also trains on all-wrong groups whose step scores differ, with the credit totals centred per
group (``rl.filter_groups_by: process``, ``rl.center_step_credit``); ``oracle_step_delta_fill``
only where dynamic sampling found too few groups whose outcomes differ (``outcome_then_process``);
``oracle_step_delta_centred`` and ``oracle_step_delta_fill_raw`` make one of its two changes each,
and ``hybrid_step_delta_fill`` / ``mc_step_delta_fill`` make both with the learned PRM / Monte-Carlo
values in place of the oracle; ``*_fill_last`` also score each completion's last step by its
outcome (``rl.outcome_last_step``: stopping short is charged). ``*_decay`` decay the
process weight linearly to 0 over the run (``rl.process_weight_schedule``). The length arms get
the ablation's length weight; ``outcome_length_right`` ranks only a group's right completions
by length (:func:`reward.length.right_length_penalty`), where ``outcome_length`` (Kimi k1.5's
term) also ranks the wrong ones."""


def uses_process(arm: str) -> bool:
    """Does the arm train on step scores (the PRM, the oracle)?"""
    return "rl.weights.process=0.0" not in ARMS[arm]


def arm_overrides(arm: str, process_weight: float, length_weight: float = LENGTH_WEIGHT) -> list[str]:
    """The arm's overrides, with the process weight for the process arms and the length weight
    for the length arms.

    >>> arm_overrides("hybrid_seq", 0.5), arm_overrides("outcome_only", 0.5)
    (['rl.weights.process=0.5', 'rl.process_mode=sequence'], ['rl.weights.process=0.0'])
    >>> arm_overrides("outcome_length", 0.5, length_weight=1.0), arm_overrides("outcome_length_right", 0.5, 1.0)[1]
    (['rl.weights.process=0.0', 'rl.weights.length_group=1.0'], 'rl.weights.length_group_right=1.0')
    """
    own = [f"{o.split('=')[0]}={length_weight}" if o.startswith(_LENGTH_KEY) else o for o in ARMS[arm]]
    return ([f"rl.weights.process={process_weight}"] if uses_process(arm) else []) + own


DEFAULT_ARMS = ["outcome_only", "hybrid_seq", "hybrid_step_min", "oracle_step_min", "outcome_length", "hybrid_length"]


@dataclass
class ArmRun:
    """One (arm, seed) run: its learning curve and final greedy results per eval problem."""

    arm: str
    seed: int
    curve: list[tuple[int, float]]
    """(RL step, greedy accuracy on the RL eval subset), step 0 first."""
    correct: list[bool] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    unneeded: list[int] = field(default_factory=list)
    """Greedy steps per problem that compute a distractor (empty: no oracle to tell)."""
    difficulty: list[int] = field(default_factory=list)
    prm_auc: dict[str, float] = field(default_factory=dict)
    """The PRM's step AUC on this policy's own samples: ``start`` and ``end`` of RL."""
    wall_s: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ArmRun:
        return cls(**{**d, "curve": [tuple(x) for x in d["curve"]]})


# --------------------------------------------------------------------------- intervals


def two_level_interval(
    per_seed: Sequence[Sequence[float]],
    stat: Callable[[list[np.ndarray]], float] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``stat`` (default: the mean of all values) resampling
    seeds, then problems within each resampled seed (both with replacement).

    ``per_seed[s]`` are seed ``s``'s per-problem values (or rows of values, resampled whole:
    see :func:`ratio_estimate`). One seed resamples problems only; a
    statistic that is the same in every resample has a zero-width interval:

    >>> two_level_interval([[1.0, 1.0], [1.0, 1.0]])
    (1.0, 1.0)
    """
    arrays = [np.asarray(v, dtype=float) for v in per_seed if len(v)]
    if not arrays:
        return (float("nan"), float("nan"))
    stat = stat or (lambda xs: float(np.concatenate(xs).mean()))
    rng = np.random.default_rng(seed)
    out = np.empty(n_boot)
    for b in range(n_boot):
        picked = rng.integers(len(arrays), size=len(arrays))
        out[b] = stat([arrays[i][rng.integers(len(arrays[i]), size=len(arrays[i]))] for i in picked])
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(out, [tail, 100 - tail])
    return (float(lo), float(hi))


def seed_interval(values: Sequence[float], n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval of the mean of one value per seed (e.g. a PRM AUC per run).

    >>> seed_interval([0.5, 0.5, 0.5])
    (0.5, 0.5)
    """
    return two_level_interval([[v] for v in values], n_boot=n_boot, seed=seed, level=level)


def estimate(per_seed: Sequence[Sequence[float]], n_boot: int = 1000) -> dict[str, float]:
    """``{"mean", "lo", "hi"}``: the mean over every (seed, problem) value and its interval."""
    flat = [x for v in per_seed for x in v]
    if not flat:
        return {"mean": None, "lo": None, "hi": None}
    lo, hi = two_level_interval(per_seed, n_boot=n_boot)
    return {"mean": float(np.mean(flat)), "lo": lo, "hi": hi}


def ratio_estimate(num: Sequence[Sequence[float]], den: Sequence[Sequence[float]], n_boot: int = 1000) -> dict[str, float]:
    """Ratio of sums (e.g. unneeded steps / all steps) with a two-level interval that resamples
    each (numerator, denominator) pair together."""
    pairs = [list(zip(n, d)) for n, d in zip(num, den) if len(n)]
    if not pairs:
        return {"mean": None, "lo": None, "hi": None}

    def ratio(xs: list[np.ndarray]) -> float:
        both = np.concatenate(xs)
        return float(both[:, 0].sum() / max(1.0, both[:, 1].sum()))

    lo, hi = two_level_interval(pairs, ratio, n_boot)
    return {"mean": ratio([np.asarray(p, dtype=float) for p in pairs]), "lo": lo, "hi": hi}


# --------------------------------------------------------------------------- curves


def mean_curve(runs: Sequence[ArmRun]) -> list[tuple[int, float]]:
    """Accuracy per step averaged over the runs (steps present in every run)."""
    if not runs:
        return []
    steps = set.intersection(*(set(s for s, _ in r.curve) for r in runs))
    return [(s, float(np.mean([dict(r.curve)[s] for r in runs]))) for s in sorted(steps)]


def steps_to_reach(curve: Sequence[tuple[int, float]], target: float) -> int | None:
    """First step at which ``curve`` reaches ``target`` (``None``: never)."""
    for step, acc in curve:
        if acc >= target:
            return step
    return None


def reach_interval(runs: Sequence[ArmRun], target: float, n_boot: int = 1000, seed: int = 0) -> tuple[float | None, float | None]:
    """Interval of :func:`steps_to_reach` of the mean curve, resampling seeds (``None``: the
    resampled curve never reaches ``target`` at that end of the interval)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_boot):
        picked = [runs[i] for i in rng.integers(len(runs), size=len(runs))]
        reach = steps_to_reach(mean_curve(picked)[1:], target)
        out.append(float("inf") if reach is None else float(reach))
    # Percentiles that are values of the sample: interpolating towards a curve that never
    # reaches (inf) would give nan.
    lo, hi = np.percentile(out, [2.5, 97.5], method="inverted_cdf")
    return (None if np.isinf(lo) else float(lo), None if np.isinf(hi) else float(hi))


# --------------------------------------------------------------------------- the summary


def hardest_subset(run: ArmRun) -> list[int]:
    """Indices of the eval problems of the highest difficulty."""
    if not run.difficulty:
        return []
    top = max(run.difficulty)
    return [i for i, d in enumerate(run.difficulty) if d == top]


def short_of_needed(run: ArmRun) -> list[float]:
    """Per problem, 1.0 when the greedy solution writes fewer needed steps (its steps that compute
    no distractor) than the problem needs, else 0.0: a solution made short by skipping work it
    needed, not by dropping distractors. On ``dag`` a problem's difficulty is its number of
    needed steps; without the oracle's counts (``unneeded`` empty) there is nothing to tell.

    >>> short_of_needed(ArmRun("a", 1, [], steps=[5, 3, 4], unneeded=[2, 0, 0], difficulty=[3, 4, 4]))
    [0.0, 1.0, 0.0]
    """
    if not run.unneeded:
        return []
    return [float(s - u < d) for s, u, d in zip(run.steps, run.unneeded, run.difficulty)]


def paired(runs: Sequence[ArmRun], base: dict[int, ArmRun], pick: Callable[[ArmRun], list[float]]) -> list[list[float]]:
    """Per seed, ``pick(run) - pick(baseline run of the same seed)`` problem by problem."""
    out = []
    for r in runs:
        b = base.get(r.seed)
        if b is not None and len(pick(b)) == len(pick(r)):
            out.append([x - y for x, y in zip(pick(r), pick(b))])
    return out


def summarize(runs: Sequence[ArmRun], n_boot: int = 1000) -> dict[str, dict]:
    """Per arm: seeds, the learning curve, and each measure as ``{"mean", "lo", "hi"}`` (95%).

    ``steps_to_baseline_final``: the first step after the start at which the arm's mean curve
    reaches outcome-only's final mean accuracy (``fraction_of_baseline_steps``: over
    outcome-only's last step). Absent when outcome-only did not end above its start (then any
    arm "reaches" it at once, which says nothing).
    """
    arms: dict[str, list[ArmRun]] = {}
    for r in runs:
        arms.setdefault(r.arm, []).append(r)
    # Sorted by seed as every arm is below: the baseline's mean curve then reaches its own final
    # accuracy exactly, whatever order the runs came in.
    base_runs = sorted(arms.get(BASELINE, []), key=lambda r: r.seed)
    base_by_seed = {r.seed: r for r in base_runs}
    base_curve = mean_curve(base_runs)
    target = base_curve[-1][1] if base_curve and base_curve[-1][1] > base_curve[0][1] else None
    b_tokens = float(np.mean([t for r in base_runs for t in r.tokens])) if base_runs and base_runs[0].tokens else 0.0
    out: dict[str, dict] = {}
    for arm, rs in arms.items():
        rs = sorted(rs, key=lambda r: r.seed)
        hard = [hardest_subset(r) for r in rs]
        row: dict = {
            "seeds": [r.seed for r in rs],
            "curve": mean_curve(rs),
            "final_acc": estimate([[float(c) for c in r.correct] for r in rs], n_boot),
            "hardest_difficulty": max(rs[0].difficulty) if rs[0].difficulty else None,
            "hardest_acc": estimate([[float(r.correct[i]) for i in h] for r, h in zip(rs, hard)], n_boot),
            "tokens": estimate([[float(t) for t in r.tokens] for r in rs], n_boot),
            "unneeded_step_share": ratio_estimate([r.unneeded for r in rs], [r.steps for r in rs], n_boot),
            "short_of_needed": estimate([short_of_needed(r) for r in rs], n_boot) if rs[0].unneeded else None,
            "wall_s": float(np.mean([r.wall_s for r in rs])),
        }
        row["start_acc"] = row["curve"][0][1] if row["curve"] else None
        for when in ("start", "end"):
            vals = [r.prm_auc[when] for r in rs if r.prm_auc.get(when) is not None]
            if vals:
                lo, hi = seed_interval(vals, n_boot)
                row[f"prm_auc_{when}"] = {"mean": float(np.mean(vals)), "lo": lo, "hi": hi}
        if arm != BASELINE and base_runs:
            row["final_acc_vs_baseline"] = estimate(paired(rs, base_by_seed, lambda r: [float(c) for c in r.correct]), n_boot)
            row["hardest_acc_vs_baseline"] = estimate(
                paired(rs, base_by_seed, lambda r: [float(r.correct[i]) for i in hardest_subset(r)]), n_boot
            )
            row["tokens_vs_baseline"] = row["tokens"]["mean"] / b_tokens - 1 if b_tokens and row["tokens"]["mean"] else None
        if target is not None:
            reach = steps_to_reach(row["curve"][1:], target)
            lo, hi = reach_interval(rs, target, n_boot)
            row["steps_to_baseline_final"] = {"mean": reach, "lo": lo, "hi": hi}
            last = base_curve[-1][0]
            row["fraction_of_baseline_steps"] = reach / last if reach is not None and last else None
        out[arm] = row
    return out


# --------------------------------------------------------------------------- the table


def _cell(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, dict):
        if v.get("mean") is None:
            return "never" if "lo" in v and v.get("hi") is None and v.get("lo") is None else "n/a"
        lo, hi = v.get("lo"), v.get("hi")
        fmt = "{:.0f}" if isinstance(v["mean"], int) else "{:.3f}"
        band = f" [{'n/a' if lo is None else fmt.format(lo)}, {'never' if hi is None else fmt.format(hi)}]"
        return fmt.format(v["mean"]) + band
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


COLUMNS = [
    ("final_acc", "final acc"),
    ("final_acc_vs_baseline", "vs outcome-only"),
    ("hardest_acc", "hardest acc"),
    ("hardest_acc_vs_baseline", "hardest vs outcome-only"),
    ("steps_to_baseline_final", "steps to outcome-only's final"),
    ("fraction_of_baseline_steps", "fraction of its steps"),
    ("tokens", "tokens"),
    ("tokens_vs_baseline", "tokens vs outcome-only"),
    ("unneeded_step_share", "unneeded steps"),
    ("short_of_needed", "short of needed steps"),
    ("prm_auc_start", "PRM AUC start"),
    ("prm_auc_end", "PRM AUC end"),
]


def markdown(summary: dict[str, dict]) -> str:
    """The summary as a markdown table: mean [95% interval] per cell."""
    lines = ["| arm | seeds | start acc | " + " | ".join(t for _, t in COLUMNS) + " |", "|---" * (len(COLUMNS) + 3) + "|"]
    for arm, row in summary.items():
        cells = [_cell(row.get(k)) for k, _ in COLUMNS]
        lines.append(f"| {arm} | {len(row['seeds'])} | {_cell(row.get('start_acc'))} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
