"""Label and evaluate on a local Ray cluster (2 actors) give exactly the local run's results."""

from __future__ import annotations

import json
import socket
import time

import pytest
import ray

from prmflow import workspace as ws
from prmflow.config import ConfigError, Params

TIMINGS = ("time_s", "tokens_per_s", "sequences_per_s", "wall_s", "seconds", "cpu", "rss", "memory")


def _drop_timings(d):
    if isinstance(d, dict):
        return {k: _drop_timings(v) for k, v in d.items() if not any(t in k for t in TIMINGS)}
    return d


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A tiny random policy in models/base, synthetic problems in data/curated, small batches
    (several shards per call)."""
    from prmflow.lm.models import build_tiny_model, build_tokenizer
    from prmflow.problems.synthetic import generate_problems

    monkeypatch.chdir(tmp_path)
    params = Params.model_validate(
        {
            "model": {"tiny": {"hidden_size": 32, "num_layers": 1, "num_heads": 2, "intermediate_size": 64}},
            # rollouts > batch_size: any step prefix rolled out fills more than one shard, whatever the random policy writes
            "label": {
                "num_problems": 4,
                "samples_per_problem": 2,
                "rollouts": 4,
                "max_new_tokens": 32,
                "batch_size": 2,
                "compare_num_problems": 2,
            },
            "evaluate": {"num_samples": 2, "max_new_tokens": 40, "batch_size": 4},
        }
    )
    tok = build_tokenizer()
    build_tiny_model(tok, params.model, seed=0).save_pretrained(tmp_path / "models/base")
    tok.save_pretrained(tmp_path / "models/base")

    def split(n, seed):
        return [dict(r, id=f"s{seed}-{i}", source="synthetic") for i, r in enumerate(generate_problems(n, seed, 2, 4))]

    ws.save_curated({"train": split(6, 1), "eval": split(6, 2)}, tmp_path / "data/curated")
    return tmp_path, params


def _label_and_evaluate(params, out):
    from tasks import evaluate, label

    t0 = time.perf_counter()
    lm = label.run(params, out_dir=out / "labels", metrics_path=out / "label.json", plots_dir=out / "plots_label")
    em, _ = evaluate.run(params, metrics_path=out / "eval.json", plots_dir=out / "plots_eval")
    rows = [dict(r) for r in ws.load_labels(out / "labels")]
    return _drop_timings(lm), _drop_timings(em), rows, time.perf_counter() - t0


def test_ray_backend_gives_the_local_labels_and_eval_metrics(workspace):
    tmp, params = workspace
    local = _label_and_evaluate(params, tmp / "local")
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        on_ray = params.model_copy(update={"compute": params.compute.model_copy(update={"backend": "ray", "workers": 2})})
        remote = _label_and_evaluate(on_ray, tmp / "ray")
    finally:
        ray.shutdown()
    print(f"label+evaluate wall time: local {local[3]:.1f} s, ray 2 workers {remote[3]:.1f} s")
    assert remote[2] == local[2] and len(local[2]) > 0  # the step labels, row for row
    assert remote[0] == local[0]
    assert remote[1] == local[1]
    assert local[0]["sampling.rollouts.sequences"] > params.label.batch_size  # more than one shard of rollouts


def test_unreachable_ray_address_fails_before_any_work_naming_the_setting(workspace):
    from tasks import label

    tmp, params = workspace
    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bad = params.model_copy(update={"compute": params.compute.model_copy(update={"backend": "ray", "ray_address": f"127.0.0.1:{port}"})})
    with pytest.raises(ConfigError, match=r"compute\.ray_address: cannot reach"):
        label.run(bad, metrics_path=tmp / "label.json")
    assert not (tmp / "label.json").exists() and not ray.is_initialized()
    assert json.dumps(params.compute.model_dump())  # the original params are untouched
