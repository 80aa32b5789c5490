"""Stage ``train_policy`` on a micro config: resume equals an uninterrupted run; NaN stops cleanly."""

import math

import pytest
import torch


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    """Curated micro data and a tiny random policy (no SFT: RL mechanics, not learning)."""
    from prmflow.config import Params
    from prmflow.lm.models import build_tiny_model, build_tokenizer
    from tasks.curate import run as curate

    root = tmp_path_factory.mktemp("rl")
    params = Params.model_validate(
        {
            "model": {
                "tiny": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64, "max_position_embeddings": 160}
            },
            "data": {"num_train": 20, "num_eval": 8, "min_steps": 2, "max_steps": 3},
            "rl": {
                "steps": 3,
                "prompts_per_step": 2,
                "group_size": 2,
                "max_new_tokens": 30,
                "eval_every": 0,
                "checkpoint_every": 1,
                "weights": {"outcome": 1.0, "process": 0.0},
                "dynamic_sampling": False,  # a random policy rarely has a group with differing outcomes
            },
        }
    )
    curate(params, out_dir=root / "curated", rejects_dir=root / "rejects", metrics_path=root / "curate.json")
    tok = build_tokenizer(params.data.modulus)
    build_tiny_model(tok, params.model, seed=0).save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    return root, params


def run(root, params, tag, **kw):
    from tasks.train_policy import run as train_policy

    return train_policy(
        params,
        policy_dir=root / "base",
        prm_dir=None,
        curated_dir=root / "curated",
        out_dir=root / tag / "policy",
        ckpt_dir=root / tag / "ckpt",
        metrics_path=root / tag / "m.json",
        plots_dir=root / tag / "plots",
        **kw,
    )


def weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_killed_run_resumes_from_its_checkpoint_and_ends_where_an_uninterrupted_one_does(micro, capsys):
    root, params = micro
    run(root, params, "straight")
    assert run(root, params, "resumed", max_steps_this_run=2) == {"stopped_at": 2}  # "killed" after step 2
    assert not (root / "resumed/policy").exists()
    summary = run(root, params, "resumed")
    assert "resuming from checkpoint at step 2" in capsys.readouterr().out
    assert summary["steps"] == 3
    a, b = weights(root / "straight/policy"), weights(root / "resumed/policy")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_nan_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(micro, monkeypatch):
    import json

    import prmflow.rl.trainer as pl
    from tasks.train_policy import TrainingDiverged

    root, params = micro
    real, calls = pl.clipped_policy_loss, {"n": 0}

    def nan_on_third_step(*a, **k):
        calls["n"] += 1
        loss, stats = real(*a, **k)
        return (loss * float("nan") if calls["n"] == 3 else loss), stats

    monkeypatch.setattr(pl, "clipped_policy_loss", nan_on_third_step)
    with pytest.raises(TrainingDiverged, match=r"loss is nan at RL step 3.*last good checkpoint"):
        run(root, params, "nan")
    assert json.loads((root / "nan/ckpt/progress.json").read_text())["step"] == 2
    assert not (root / "nan/policy").exists()  # no half-trained candidate


def test_resume_restores_the_optimizer_and_the_rng_state(micro, monkeypatch):
    from prmflow.rl import checkpoint

    root, params = micro
    run(root, params, "rng", max_steps_this_run=1)
    saved = torch.load(root / "rng/ckpt" / checkpoint.STATE_FILE, weights_only=False)["rng"]
    torch.manual_seed(12345)  # the resuming process starts from some other RNG state
    seen = {}
    real = checkpoint.restore

    def spy(ckpt_dir, optimizer):
        real(ckpt_dir, optimizer)
        seen["rng"] = torch.get_rng_state()
        seen["optimizer_steps"] = float(optimizer.state_dict()["state"][0]["step"])  # a tensor updated in place later

    monkeypatch.setattr(checkpoint, "restore", spy)
    run(root, params, "rng")
    assert torch.equal(seen["rng"], saved) and seen["optimizer_steps"] == 1.0


@pytest.mark.parametrize("scorer", ["oracle", "reuse", "confidence", "mc"])
def test_the_process_term_can_come_from_the_oracle_the_policy_confidence_or_mc_values(micro, scorer):
    """No PRM needed (prm_dir=None): the step credit comes from the oracle's perfect step scores,
    the dead-step scorer, the training-free score or Monte-Carlo values sampled from the policy
    being trained (the values: tests/prmflow/rl/test_rewarder.py, test_mc_values.py)."""
    root, params = micro
    p = params.model_copy(deep=True)
    p.rl = p.rl.model_copy(update={"steps": 1, "process_scorer": scorer, "weights": {"outcome": 1.0, "process": 0.5}})
    rows = []
    run(root, p, f"scorer-{scorer}", log_fn=lambda row, step: rows.append(row))
    assert "reward/process_step" in rows[-1] and "monitor/prm_outcome_disagreement" in rows[-1]
    assert ("mc/rollouts" in rows[-1]) == (scorer == "mc")


def test_oracle_needed_is_the_oracle_that_also_scores_waste(micro):
    """The same scorer as ``oracle`` (its RL run is above), with wasted steps scored 0
    (tests/prmflow/prm/test_oracle.py)."""
    from tasks.train_policy import load_scorer

    root, params = micro
    p = params.model_copy(deep=True)
    for name, needed in (("oracle", False), ("oracle_needed", True)):
        p.rl = p.rl.model_copy(update={"process_scorer": name})
        scorer, _ = load_scorer(None, p, "cpu", root / "base", [{"question": "a=5;b=a+3;b=?"}])
        assert scorer.needed is needed and len(scorer.questions) == 1


@pytest.mark.parametrize("filter_by", ["process", "outcome", "outcome_then_process"])
def test_dynamic_sampling_asks_the_step_scorer_with_the_process_term_on(micro, filter_by):
    """rl.filter_groups_by: process also keeps groups whose step scores differ (the rule:
    prmflow.rl.trainer.process_informative_groups), so the scorer sees every drawn group."""
    root, params = micro
    p = params.model_copy(deep=True)
    update = {"steps": 1, "dynamic_sampling": True, "max_sampling_rounds": 1, "process_scorer": "oracle", "filter_groups_by": filter_by}
    p.rl = p.rl.model_copy(update={**update, "weights": {"outcome": 1.0, "process": 0.5}})
    rows = []
    run(root, p, f"dyn-{filter_by}", log_fn=lambda row, step: rows.append(row))
    if filter_by != "outcome_then_process":  # there, only when a group's steps differ (a random policy's may not)
        assert ("sampling/kept_by_process" in rows[-1]) == (filter_by == "process")
    assert rows[-1]["sampling/informative_groups"] == 0.0  # a random policy: no group whose outcomes differ


def test_dynamic_sampling_by_outcome_or_length_runs_the_length_rule(micro):
    """rl.filter_groups_by: outcome_or_length also keeps all-right groups whose lengths differ
    (the rule, by hand: tests/prmflow/rl/test_length_filter.py). A random policy has none."""
    root, params = micro
    p = params.model_copy(deep=True)
    update = {"steps": 1, "dynamic_sampling": True, "max_sampling_rounds": 1, "filter_groups_by": "outcome_or_length"}
    p.rl = p.rl.model_copy(update={**update, "weights": {"outcome": 1.0, "process": 0.0, "length_group_right": 1.0}})
    rows = []
    run(root, p, "dyn-length", log_fn=lambda row, step: rows.append(row))
    assert rows[-1]["sampling/kept_by_length"] == 0.0 and rows[-1]["sampling/informative_groups"] == 0.0


def test_dynamic_sampling_skips_a_step_without_an_informative_group(micro):
    """A random policy gets every group wrong: no group has an advantage, the step trains on
    nothing (instead of on zeros) and says so."""
    root, params = micro
    p = params.model_copy(deep=True)
    p.rl = p.rl.model_copy(update={"steps": 1, "dynamic_sampling": True, "max_sampling_rounds": 2, "oversample": 1.5})
    rows = []
    run(root, p, "dyn", log_fn=lambda row, step: rows.append(row))
    assert rows[-1]["sampling/informative_groups"] == 0.0 and rows[-1]["sampling/rounds"] == 2.0
    assert rows[-1]["sampling/groups"] == 2 * p.rl.prompts_per_round == 2 * math.ceil(1.5 * p.rl.prompts_per_step)  # rl.oversample: 1.5
