"""Can reasoning get shorter on this task, and does a policy leave room to shorten it?

The length goal ("the length term gives >= 20% fewer tokens") can only show where solutions
waste tokens: on the ``dag`` task, steps that compute distractors. This measures both sides on
fresh problems (:func:`benchmarks.evalsets.fresh_problems`, none curated):

- the task: tokens of the direct reference solution (needed steps only) and of the verbose one
  (every assignment computed), and the headroom ``1 - direct / verbose``: the largest share of
  tokens a policy that always wrote the verbose style could save;
- each policy: accuracy, tokens, steps and the share of steps computing a distractor (right or
  wrong), greedy (what ``evaluate`` reports) and sampled at ``rl.temperature``; with
  ``--groups N``, how many of RL's groups (``rl.group_size`` samples of a train problem) hold
  right samples that differ in how many distractors they compute, and how many mix the direct
  and verbose styles at all, with each style's accuracy there (:func:`style_variation`);
- where a policy errs: how often a step computing a needed variable is wrong when it walked
  to it (computed every line before it) and when it jumped distractor lines
  (:func:`jump_errors`): the price of the direct style for this policy;
- how the text-only dead-step flags of ``rl.process_scorer: reuse`` match the oracle's
  distractor flags, on each policy's solutions (all, and the right ones: ``right_*``) and on
  the verbose references (:func:`reuse_agreement`)::

    python benchmarks/length_headroom.py --policy warm=models/base --policy rl=models/champion \\
        -S data.task=dag -S data.max_distractors=6

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.verifiers import scorer_specs  # noqa: E402  (NAME=DIR arguments)


def length_stats(right: list[bool], tokens: list[int], unneeded: list[list[bool]]) -> dict[str, float]:
    """Accuracy, mean tokens and steps per solution, and the share of all steps that compute a
    distractor (each solution's steps as flags: unneeded or not).

    >>> length_stats([True, False], [20, 30], [[False, True], [False, False, True]])
    {'accuracy': 0.5, 'tokens': 25.0, 'steps': 2.5, 'unneeded_share': 0.4}
    """
    steps = [u for flags in unneeded for u in flags]
    n = len(right)
    return {
        "accuracy": sum(right) / n,
        "tokens": sum(tokens) / n,
        "steps": len(steps) / n,
        "unneeded_share": sum(steps) / max(len(steps), 1),
    }


def style_variation(right: list[bool], unneeded: list[int], group_size: int) -> dict[str, float]:
    """What a group-relative length term can learn from: the share of groups (``group_size``
    consecutive samples of one problem) whose *right* samples compute different numbers of
    distractors. Where right samples all write the same steps, their lengths differ only by
    digits and the length term has no shorter style to prefer.

    Beside it, the groups that mix the two styles at all (a sample computing no distractor and
    one computing some, right or wrong), and in those groups the accuracy of each style: where
    both styles are sampled but rarely both right, the outcome decides between them and the
    length term has nothing left to add.

    >>> style_variation([True, True, False, True, True, True], [2, 0, 0, 1, 1, 1], 3)  # doctest: +NORMALIZE_WHITESPACE
    {'groups': 2, 'groups_with_a_right_sample': 1.0, 'right_samples_differ_in_distractors': 0.5,
     'groups_mixing_styles': 0.5, 'direct_accuracy_in_mixed': 0.5, 'verbose_accuracy_in_mixed': 1.0}
    """
    groups = [range(g, g + group_size) for g in range(0, len(right), group_size)]
    with_right = [[unneeded[i] for i in g if right[i]] for g in groups]
    mixed = [g for g in groups if len({unneeded[i] > 0 for i in g}) > 1]
    direct = [right[i] for g in mixed for i in g if unneeded[i] == 0]
    verbose = [right[i] for g in mixed for i in g if unneeded[i] > 0]
    return {
        "groups": len(groups),
        "groups_with_a_right_sample": sum(bool(u) for u in with_right) / len(groups),
        "right_samples_differ_in_distractors": sum(len(set(u)) > 1 for u in with_right) / len(groups),
        "groups_mixing_styles": len(mixed) / len(groups),
        "direct_accuracy_in_mixed": sum(direct) / max(len(direct), 1),
        "verbose_accuracy_in_mixed": sum(verbose) / max(len(verbose), 1),
    }


def reuse_agreement(unneeded: list[list[bool]], used: list[list[bool]]) -> dict[str, float]:
    """How the text-only dead-step flags (:func:`reward.reuse.used_steps`, ``False`` = dead) match
    the oracle's distractor flags, over solutions whose steps both read alike (same count): the
    share of distractor steps flagged dead, and of the other steps flagged dead.

    >>> reuse_agreement([[False, True, False], [True], [True, False]], [[True, False, True], [True], [True]])
    {'distractors_flagged': 0.5, 'others_flagged': 0.0, 'solutions_compared': 2}
    """
    pairs = [(u, k) for flags, kept in zip(unneeded, used) if len(flags) == len(kept) for u, k in zip(flags, kept)]
    distractor = [not k for u, k in pairs if u]
    other = [not k for u, k in pairs if not u]
    return {
        "distractors_flagged": sum(distractor) / max(len(distractor), 1),
        "others_flagged": sum(other) / max(len(other), 1),
        "solutions_compared": sum(len(f) == len(k) for f, k in zip(unneeded, used)),
    }


def jump_errors(attempts: list[list[tuple[int, bool]]], right: list[bool]) -> dict[str, float]:
    """How often a step that computes a needed variable is wrong when it walked to it (no
    distractor line between it and the last variable written) and when it jumped one or more,
    over every solution's :func:`prmflow.problems.programs.needed_attempts`; and where the wrong
    solutions (``right`` false) failed, as shares of all solutions: at a jump, at a walked step,
    or elsewhere (every attempt right: stopped short, or a wrong answer line).

    >>> jump_errors([[(0, True), (1, True)], [(0, True), (2, False)], [(0, False)], [(0, True)]], [True, False, False, False])
    {'walked': 4, 'wrong_walked': 0.25, 'jumped': 2, 'wrong_jumped': 0.5, 'failed_at_jump': 0.25, 'failed_at_walk': 0.25, 'failed_elsewhere': 0.25}
    """
    flat = [a for sol in attempts for a in sol]
    out: dict[str, float] = {}
    for name, pick in (("walked", lambda gap: gap == 0), ("jumped", lambda gap: gap > 0)):
        seen = [ok for gap, ok in flat if pick(gap)]
        out[name] = len(seen)
        out[f"wrong_{name}"] = 1 - sum(seen) / len(seen) if seen else float("nan")
    failed = [sol[-1] if sol and not sol[-1][1] else None for sol, ok in zip(attempts, right) if not ok]
    n = max(len(right), 1)
    out["failed_at_jump"] = sum(f is not None and f[0] > 0 for f in failed) / n
    out["failed_at_walk"] = sum(f is not None and f[0] == 0 for f in failed) / n
    out["failed_elsewhere"] = sum(f is None for f in failed) / n
    return out


def headroom(direct_tokens: list[int], verbose_tokens: list[int]) -> float:
    """The share of tokens the direct style saves over the verbose one, over all problems.

    >>> headroom([50, 30], [60, 40])
    0.2
    """
    return round(1 - sum(direct_tokens) / sum(verbose_tokens), 6)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=".", help="the workspace (params.yaml, data/curated)")
    ap.add_argument("--policy", action="append", default=[], metavar="NAME=DIR", help="a policy to measure (repeat)")
    ap.add_argument("--problems", type=int, default=400, help="fresh problems to measure on")
    ap.add_argument("--max-new-tokens", type=int, default=None, help="default: evaluate.max_new_tokens")
    ap.add_argument(
        "--groups", type=int, default=0, help="also sample rl.group_size per problem for this many train problems at rl.temperature"
    )
    ap.add_argument("-S", "--set", dest="overrides", action="append", default=[], help="params.yaml override (DVC's -S syntax)")
    args = ap.parse_args(argv)
    try:
        policies = scorer_specs(args.policy)
    except ValueError as e:
        ap.error(str(e).replace("--scorer", "--policy"))
    if not policies:
        ap.error("give at least one --policy NAME=DIR")
    if args.problems < 1:
        ap.error("--problems must be at least 1")

    from prmflow.errors import reported

    with reported("length_headroom"):
        import torch

        from benchmarks.evalsets import fresh_problems
        from prmflow import workspace
        from prmflow.config import load_params
        from prmflow.lm.models import load_causal_lm, load_tokenizer
        from prmflow.lm.prompts import format_prompt
        from prmflow.lm.sampling import sample
        from prmflow.problems import programs, synthetic
        from reward.outcome import verify
        from reward.reuse import solution_used_steps

        root = Path(args.root)
        params = load_params(root / "params.yaml", args.overrides)
        d = params.data
        if d.source != "synthetic" or d.task != "dag" or d.step_split != "line":
            ap.error("the oracle's needed-step labels need data.source synthetic, data.task dag and data.step_split line")
        problems = fresh_problems(args.problems, workspace.load_curated(root / workspace.CURATED), d)
        result: dict = {"problems": len(problems), "max_distractors": d.max_distractors}

        budget = args.max_new_tokens or params.evaluate.max_new_tokens
        if budget is None:
            ap.error("evaluate.max_new_tokens is null: give --max-new-tokens")
        result["max_new_tokens"] = budget
        for name, path in policies.items():
            tok = load_tokenizer(path)
            model = load_causal_lm(path, params.model, torch.device("cpu")).eval()
            prompts = [format_prompt(p["question"], params.model, tok) for p in problems]
            for mode, kw in (
                ("greedy", {"greedy": True}),
                (f"t{params.rl.temperature:g}", {"temperature": params.rl.temperature, "seed": 0}),
            ):
                out = sample(model, tok, prompts, 1, max_new_tokens=budget, **kw)
                right = [verify(t, p["final_answer"], rules=d.solution_format().answer_rules) for p, t in zip(problems, out.texts)]
                unneeded = [synthetic.oracle_unneeded_steps(p["question"], t, d.modulus) for p, t in zip(problems, out.texts)]
                stats = length_stats(right, list(out.num_tokens), unneeded)
                stats["cut_at_budget"] = 1 - sum(out.finished) / len(problems)
                attempts = [
                    programs.needed_attempts(programs.parse_program(p["question"], d.modulus), t) for p, t in zip(problems, out.texts)
                ]
                stats.update(jump_errors(attempts, right))
                used = [solution_used_steps(t) if f else None for t, f in zip(out.texts, out.finished)]  # whole solutions only
                for prefix, only_right in (("", False), ("right_", True)):
                    ended = [i for i, u in enumerate(used) if u is not None and (right[i] or not only_right)]
                    agree = reuse_agreement([unneeded[i] for i in ended], [used[i] for i in ended])
                    stats.update({prefix + k: v for k, v in agree.items()})
                result[f"{name}.{mode}"] = {k: round(v, 4) for k, v in stats.items()}
            if args.groups:  # RL's view: groups of rl.group_size samples of train problems
                rl = params.rl
                train = list(workspace.load_curated(root / workspace.CURATED)["train"])[: args.groups]
                out = sample(
                    model,
                    tok,
                    [format_prompt(p["question"], params.model, tok) for p in train],
                    rl.group_size,
                    temperature=rl.temperature,
                    max_new_tokens=rl.max_new_tokens or budget,
                    seed=0,
                )
                probs = [p for p in train for _ in range(rl.group_size)]
                right = [verify(t, p["final_answer"], rules=d.solution_format().answer_rules) for p, t in zip(probs, out.texts)]
                unneeded = [sum(synthetic.oracle_unneeded_steps(p["question"], t, d.modulus)) for p, t in zip(probs, out.texts)]
                result[f"{name}.groups_t{rl.temperature:g}"] = {
                    k: round(v, 4) for k, v in style_variation(right, unneeded, rl.group_size).items()
                }
        # the references, in the last policy's tokens
        direct = [len(tok(p["answer"])["input_ids"]) for p in problems]
        verbose_texts = [synthetic.verbose_solution(p["question"], d.modulus) for p in problems]
        verbose = [len(tok(t)["input_ids"]) for t in verbose_texts]
        result.update(
            direct_tokens=sum(direct) / len(direct),
            verbose_tokens=sum(verbose) / len(verbose),
            verbose_over_budget=sum(v > budget for v in verbose) / len(verbose),
            headroom=headroom(direct, verbose),
            verbose_reuse={
                k: round(v, 4)
                for k, v in reuse_agreement(
                    [synthetic.oracle_unneeded_steps(p["question"], t, d.modulus) for p, t in zip(problems, verbose_texts)],
                    [solution_used_steps(t) for t in verbose_texts],
                ).items()
            },
        )
        print(json.dumps(result))


if __name__ == "__main__":
    main()
