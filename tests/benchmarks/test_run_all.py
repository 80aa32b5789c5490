"""`make bench`'s table from a fake metrics folder: pure functions, numbers by hand."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks/run_all.py")
run_all = importlib.util.module_from_spec(spec)
sys.modules["run_all"] = run_all
spec.loader.exec_module(run_all)

LABEL = {
    "mc_hard.rollouts": 400,
    "mc_hard.rollouts_per_step": 4.0,
    "mc_hard.solutions": 20,
    "mc_hard.step_agreement": 0.8,
    "mc_hard.first_error_acc": 0.5,
    "mc_soft.rollouts": 400,
    "mc_soft.rollouts_per_step": 4.0,
    "mc_soft.solutions": 20,
    "first_error.rollouts": 120,
    "first_error.rollouts_per_step": 1.2,
    "first_error.solutions": 20,
    "first_error.rollout_ratio_vs_mc": 0.3,
    "agree.mc_hard.first_error.first_error_acc": 0.95,
    "agree.mc_hard.first_error.solutions": 20,
}


def fake_metrics(tmp_path: Path, skip: str | None = None) -> Path:
    d = tmp_path / "metrics"
    d.mkdir()
    names = {"curate": "curate", "warmstart": "warmstart", "label": "label", "train_prm": "prm", "train_policy": "train_policy", "evaluate": "eval"}
    for i, (stage, name) in enumerate(names.items()):
        if stage != skip:
            m = {"wall_time_s": 10.0 * (i + 1), "peak_rss_mb": 100.0 + i}
            (d / f"{name}.json").write_text(json.dumps(m | (LABEL if stage == "label" else {})))
    return d


def test_stage_rows_read_every_stage_and_add_the_total(tmp_path):
    rows = run_all.stage_rows(fake_metrics(tmp_path))
    assert [r.item for r in rows] == ["curate", "warmstart", "label", "train_prm", "train_policy", "evaluate", "total"]
    warm = rows[1]
    assert warm.value == "20.0 s, 101 MB peak RSS" and warm.metrics == {"wall_s": 20.0, "peak_rss_mb": 101.0}
    assert warm.ratio == pytest.approx(383 / 20)  # issue 10's warm start took 383 s
    assert rows[-1].metrics == {"wall_s": 210.0} and rows[-1].ratio == pytest.approx(896 / 210)


def test_a_missing_stage_fails_naming_its_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"prm\.json: no metrics of stage 'train_prm'"):
        run_all.stage_rows(fake_metrics(tmp_path, skip="train_prm"))


def test_label_rows_show_cost_and_agreement_per_method():
    rows = run_all.label_rows(LABEL)
    assert [r.item for r in rows] == ["mc_hard", "mc_soft", "first_error"]
    assert rows[0].value == "400 rollouts on 20 solutions (4.00/step); vs oracle: steps 0.800, first error 0.500"
    fe = rows[2]
    assert fe.ratio == 0.3 and fe.metrics["first_error_agreement_vs_mc"] == 0.95
    assert "same first error 0.950, rollouts x0.300" in fe.reference


def test_one_table_with_every_section_and_flat_mlflow_metrics(tmp_path):
    rl = {
        "prmflow": {"samples_per_s": 60.0, "mean_completion_tokens": 44.0, "s_per_step": 2.1},
        "trl": {"samples_per_s": 30.0, "mean_completion_tokens": 45.0, "s_per_step": 4.3},
        "ratio": 2.0,
    }
    samp = [{"shape": "rl 16x8", "mode": "T=1.0", "generate": 1000.0, "fast": 1500.0, "speedup": 1.5}]
    rows = run_all.stage_rows(fake_metrics(tmp_path)) + run_all.rl_rows(rl) + run_all.label_rows(LABEL) + run_all.sampler_rows(samp)
    text = run_all.table(rows)
    lines = text.splitlines()
    assert lines[0] == "| section | item | value | reference | ratio |" and len(lines) == 2 + 7 + 1 + 3 + 1
    assert "| rl | samples/s (mean completion tokens) | 60.0 (44.0 tok) | TRL 30.0 (45.0 tok) | 2.00x |" in lines
    assert "| sampler | rl 16x8 T=1.0 tokens/s | 1500 | generate 1000 | 1.50x |" in lines
    m = run_all.metric_dict(rows)
    assert m["stages/warmstart/wall_s"] == 20.0 and m["rl/samples_s/ratio"] == 2.0
    assert m["label/first_error/rollout_ratio_vs_mc"] == 0.3 and m["sampler/rl_16x8_T_1.0_tokens_s/speedup"] == 1.5
