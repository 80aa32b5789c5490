"""Stage ``label``: labelling logic with a fake policy, then the stage end to end on a tiny model."""

from __future__ import annotations

import json
import sys
import types

import pytest

from reward.parse import join_solution
from tasks.config import LabelConfig, ModelConfig, validate_params
from tasks.label import (
    MC_SOFT_THRESHOLD,
    comparison_table,
    label_solutions,
    make_solutions,
    normalize_answer,
    rollout_token_budget,
)
from tasks.synthetic import parse_question

QUESTION = "a=7;b=a*3;c=b-4;d=c+5;d=?"  # reference: b=7*3=21, c=21-4=17, d=17+5=22, #### 22
PROBLEM = {
    "id": "p0",
    "question": QUESTION,
    "answer": "b=7*3=21\nc=21-4=17\nd=17+5=22\n#### 22",
    "final_answer": "22",
    "steps": ["b=7*3=21", "c=21-4=17", "d=17+5=22"],
    "source": "synthetic",
    "difficulty": 3,
}
SOLUTIONS = [
    "b=7*3=21\nc=21-4=17\nd=17+5=22\n#### 22",  # A correct                 oracle T T T
    "b=7*3=21\nc=21-4=18\nd=18+5=23\n#### 23",  # B error at step 1         oracle T F F
    "b=7*3=20\nc=20-4=16\n#### 16",  # C error at step 0                    oracle F F
    "b=7*3=21\nc=21-4=17\n#### 17",  # D right steps, stops early           oracle T T
    "#### 22",  # E no step: skipped, but counts as solved
    "b=7*3=21\nc=21-4=17\nd=17+5=22\n#### 23",  # F right steps, wrong answer line oracle T T T
]
ORACLE = [[True, True, True], [True, False, False], [False, False], [True, True], [True, True, True]]


def oracle_policy(success: float, calls: list):
    """A fake policy: from a prefix that is right so far, ``round(success * n)`` of the ``n``
    rollouts finish the chain correctly; from a wrong prefix none does. Records its calls."""

    def rollout_fn(prompts, n, *, seed, desc):
        calls.append((desc, len(prompts), n))
        out = []
        for p in prompts:
            question, *prefix = [line for line in p.split("\n") if line]
            chain = parse_question(question)
            ref = chain.reference_steps()
            good = round(success * n) if prefix == ref[: len(prefix)] else 0
            rest = join_solution(ref[len(prefix) :], str(chain.answer))
            out += [rest if j < good else "x=1\n#### 99" for j in range(n)]
        return out

    return rollout_fn


def solutions():
    return make_solutions([PROBLEM], SOLUTIONS, len(SOLUTIONS), ModelConfig())


def test_make_solutions_splits_checks_and_gets_oracle():
    sols = solutions()
    assert [s.correct for s in sols] == [True, False, False, False, True, False]
    assert [s.oracle for s in sols if s.steps] == ORACLE
    assert sols[4].steps == []
    assert sols[0].prompt == QUESTION + "\n"
    assert normalize_answer("1,000.0") == "1000"


def test_perfect_policy_labels_match_the_oracle_and_costs_are_counted():
    calls = []
    cfg = LabelConfig(method="mc_hard", rollouts=4, compare_methods=True)
    rows, m = label_solutions(solutions(), oracle_policy(1.0, calls), cfg)

    assert [r["labels"] for r in rows] == ORACLE
    assert [r["oracle_labels"] for r in rows] == ORACLE
    assert [r["correct"] for r in rows] == [True, False, False, False, False]
    assert m["skipped_no_steps"] == 1 and m["num_labelled_solutions"] == 5 and m["num_solutions"] == 6
    assert m["num_steps"] == 13
    assert m["policy_solve_rate"] == pytest.approx(2 / 6)
    for method in ("mc_hard", "mc_soft", "first_error"):
        assert m[f"{method}.step_agreement"] == 1.0
        assert m[f"{method}.first_error_acc"] == 1.0
        assert m[f"{method}.bad_f1"] == 1.0
    assert m["mc_soft.good_auc"] == 1.0
    assert m["oracle.bad_rate"] == pytest.approx(4 / 13)

    # MC: every step prefix x 4, except the last step of the correct solution A (known good):
    # A 2 + B 3 + C 2 + D 2 + F 3 = 12 prefixes.
    assert [r["rollouts"] for r in rows] == [8, 12, 8, 8, 12]
    assert m["mc_hard.rollouts"] == m["mc_soft.rollouts"] == 48
    assert m["mc_hard.rollouts_per_step"] == pytest.approx(48 / 13)
    # First error: A none (correct); B probes 1, 0; C 1, 0; D 1; F 1, 2 -> 7 probes in 2 rounds.
    assert m["first_error.rollouts"] == 28
    assert m["first_error.rollout_ratio_vs_mc"] == pytest.approx(28 / 48)
    assert calls == [("mc rollouts", 12, 4), ("first_error round 1", 4, 4), ("first_error round 2", 3, 4)]


def test_weak_policy_separates_mc_hard_from_mc_soft():
    # From a right prefix only 1 of 4 rollouts succeeds: soft 0.25 on good steps.
    cfg = LabelConfig(method="mc_soft", rollouts=4, compare_methods=True)
    rows, m = label_solutions(solutions(), oracle_policy(0.25, []), cfg)
    a = rows[0]
    assert a["soft_labels"] == [0.25, 0.25, 1.0]  # last step of a correct solution: known
    assert a["labels"] == [v >= MC_SOFT_THRESHOLD for v in a["soft_labels"]]
    assert a["method"] == "mc_soft"
    assert m["mc_hard.step_agreement"] == 1.0
    assert m["mc_soft.good_auc"] == 1.0  # the soft values still rank good above bad


def test_first_error_only_without_comparison():
    calls = []
    cfg = LabelConfig(method="first_error", rollouts=2, compare_methods=False)
    rows, m = label_solutions(solutions(), oracle_policy(1.0, calls), cfg)
    assert [r["labels"] for r in rows] == ORACLE
    assert [r["soft_labels"] for r in rows] == [[float(x) for x in o] for o in ORACLE]
    assert [r["rollouts"] for r in rows] == [0, 4, 4, 2, 4]
    assert "mc_hard.rollouts" not in m and "first_error.rollout_ratio_vs_mc" not in m
    assert all(desc.startswith("first_error") for desc, _, _ in calls)
    assert "| first_error |" in comparison_table(m)


def test_comparison_on_a_subset_of_problems():
    other = dict(PROBLEM, id="p1", question="a=3;b=a+4;b=?", answer="b=3+4=7\n#### 7", final_answer="7", steps=["b=3+4=7"], difficulty=1)
    texts = SOLUTIONS + ["b=3+4=7\n#### 7", "b=3+4=8\n#### 8", "b=3+4=7\n#### 1", "#### 7", "b=3+4=7\n#### 7", "b=3+4=9\n#### 9"]
    sols = make_solutions([PROBLEM, other], texts, len(SOLUTIONS), ModelConfig())
    cfg = LabelConfig(method="mc_hard", rollouts=4, compare_num_problems=1)
    rows, m = label_solutions(sols, oracle_policy(1.0, []), cfg)
    assert len(rows) == m["mc_hard.solutions"] == 10 and m["first_error.solutions"] == 5
    assert m["mc_hard.rollouts"] == 48 + 4 * 3  # second problem: 3 wrong one-step solutions
    assert m["first_error.rollouts"] == 28
    assert m["first_error.rollout_ratio_vs_mc"] == pytest.approx(28 / 48)  # on problem p0 only
    assert m["mc_hard.step_agreement"] == m["first_error.step_agreement"] == 1.0


def test_no_oracle_for_other_sources():
    gsm = dict(PROBLEM, source="gsm8k")
    sols = make_solutions([gsm], SOLUTIONS[:2], 2, ModelConfig())
    rows, m = label_solutions(sols, oracle_policy(1.0, []), LabelConfig(rollouts=2))
    assert m["oracle_solutions"] == 0 and "oracle_note" in m
    assert "mc_soft.step_agreement" not in m and "mc_soft.rollouts" in m
    assert all(r["oracle_labels"] == [] for r in rows)
    assert "no oracle" in comparison_table(m)


# --- the stage, end to end ----------------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A tiny random policy in models/base and 3 synthetic problems in data/curated."""
    import datasets

    from tasks.modeling import build_tiny_model, build_tokenizer
    from tasks.synthetic import generate_problems

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    params = validate_params(
        {
            "model": {"tiny": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}},
            "label": {"num_problems": 3, "samples_per_problem": 3, "rollouts": 2, "max_new_tokens": 24, "batch_size": 16},
        }
    )
    tok = build_tokenizer()
    model = build_tiny_model(tok, params.model, seed=0)
    model.save_pretrained(tmp_path / "models/base")
    tok.save_pretrained(tmp_path / "models/base")

    def split(n, seed):
        rows = generate_problems(n, seed, 2, 4)
        return datasets.Dataset.from_list([dict(r, id=f"s{seed}-{i}", source="synthetic") for i, r in enumerate(rows)])

    curated = datasets.DatasetDict(train=split(5, 1), eval=split(2, 2))
    curated.save_to_disk(str(tmp_path / "data/curated"))
    # The curate stage is written elsewhere; its contract is load_curated(dir) -> DatasetDict.
    stub = types.ModuleType("tasks.curate")
    stub.load_curated = lambda out_dir="data/curated": datasets.load_from_disk(str(out_dir))
    monkeypatch.setitem(sys.modules, "tasks.curate", stub)
    return tmp_path, params


def test_label_stage_writes_stepwise_dataset_and_metrics(workspace):
    from tasks.label import label, load_labels

    tmp_path, params = workspace
    seen = []
    m = label(params, progress=lambda done, total, desc: seen.append((done, total, desc)))

    assert m["num_problems"] == 3 and m["num_solutions"] == 9
    assert m["num_labelled_solutions"] + m["skipped_no_steps"] == 9
    assert m["oracle_solutions"] == m["num_labelled_solutions"]
    assert m["rollout_max_new_tokens"] <= 24
    assert m["sampling.rollouts.tokens_per_s"] > 0
    assert json.loads((tmp_path / "metrics/label.json").read_text()) == m
    assert seen[0][2] == "solutions" and seen[-1][0] == seen[-1][1]

    ds = load_labels("data/labels")
    assert len(ds) == m["num_labelled_solutions"]
    for r in ds:
        n = len(r["completions"])
        assert n >= 1 and len(r["labels"]) == len(r["soft_labels"]) == len(r["oracle_labels"]) == n
        assert r["method"] == "mc_soft" and r["prompt"] == r["question"] + "\n"
    assert sum(ds["rollouts"]) == m["mc_soft.rollouts"]
    lines = (tmp_path / "data/labels/stepwise.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [{k: r[k] for k in ("prompt", "completions", "labels")} for r in ds]


def test_label_cli_logs_to_mlflow(workspace, capsys):
    import mlflow

    from tasks import label as stage

    tmp_path, params = workspace
    (tmp_path / "params.yaml").write_text(json.dumps(params.model_dump()))
    stage.main(["--params", "params.yaml"])
    assert "| mc_soft |" in capsys.readouterr().out

    runs = mlflow.search_runs(experiment_names=["prmflow"], output_format="list")
    assert len(runs) == 1 and runs[0].info.run_name == "label"
    metrics = runs[0].data.metrics
    assert "mc_soft.step_agreement" in metrics and "first_error.rollout_ratio_vs_mc" in metrics
    assert runs[0].data.params["rollouts"] == "2"
    client = mlflow.MlflowClient()
    assert "label_methods.md" in [a.path for a in client.list_artifacts(runs[0].info.run_id)]


def test_rollout_budget_is_bounded_by_the_longest_reference():
    from tasks.modeling import build_tokenizer

    tok = build_tokenizer()
    cfg = LabelConfig(max_new_tokens=96)
    n = len(tok(PROBLEM["answer"], add_special_tokens=False)["input_ids"])
    assert rollout_token_budget([PROBLEM], tok, cfg) == min(96, -(-5 * n // 4) + 4)
    assert rollout_token_budget([PROBLEM], tok, LabelConfig(rollout_max_new_tokens=7)) == 7
