import torch

from reward.parse import split_steps
from tasks.train_policy import build_batch, step_end_positions


def test_step_end_positions_match_split_steps():
    pieces = ["b", "=", "7", "*", "3", "=", "21", "\n", "c", "=", "17", "\n", "####", " ", "17", "</s>"]
    assert step_end_positions(pieces) == [8, 12]
    assert len(step_end_positions(pieces)) == len(split_steps("".join(pieces[:-1])))


def test_step_end_positions_multi_newline_tokens_and_blank_lines():
    # a BPE-style tokenizer may put ".\n\n" in one token; blank lines are not steps
    pieces = ["x = 1.\n\n", "y", " = 2\n", "\n", "#### 2\n", "z\n"]
    assert step_end_positions(pieces) == [1, 3]
    assert step_end_positions(["no newline at all"]) == []


def test_build_batch_masks_completion_tokens_only():
    ids, attn, cmask, adv = build_batch([[5, 6], [7]], [[1, 2, 3], [4]], [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([-1.0])], pad_id=0)
    assert ids.tolist() == [[5, 6, 1, 2, 3], [7, 4, 0, 0, 0]]
    assert attn.tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert cmask.tolist() == [[0, 0, 1, 1, 1], [0, 1, 0, 0, 0]]
    assert adv.tolist() == [[0, 0, 1, 2, 3], [0, -1, 0, 0, 0]]


# ----------------------------------------------------------------------------- end to end, micro

import pytest  # noqa: E402


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    """Curated micro data and a tiny random policy (no SFT: RL mechanics, not learning)."""
    from tasks.config import Params
    from tasks.curate import curate
    from tasks.modeling import build_tiny_model, build_tokenizer

    root = tmp_path_factory.mktemp("rl")
    params = Params.model_validate({
        "model": {"tiny": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64, "max_position_embeddings": 160}},
        "data": {"num_train": 20, "num_eval": 8, "min_steps": 2, "max_steps": 3},
        "rl": {"steps": 3, "prompts_per_step": 2, "group_size": 2, "max_new_tokens": 24, "eval_every": 0, "checkpoint_every": 1, "weights": {"process": 0.0}},
    })
    curate(params, out_dir=root / "curated", rejects_dir=root / "rejects", metrics_path=root / "curate.json")
    tok = build_tokenizer(params.data.modulus)
    build_tiny_model(tok, params.model, seed=0).save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    return root, params


def run(root, params, tag, **kw):
    from tasks.train_policy import train_policy

    return train_policy(params, policy_dir=root / "base", prm_dir=None, curated_dir=root / "curated", out_dir=root / tag / "policy",
                        ckpt_dir=root / tag / "ckpt", metrics_path=root / tag / "m.json", plots_dir=root / tag / "plots", **kw)


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

    import tasks.policy_loss as pl
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
