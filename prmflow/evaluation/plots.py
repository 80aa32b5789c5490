"""Evaluation plots: CSV files for ``dvc plots`` and their PNG renderings (MLflow artifacts)."""

from __future__ import annotations

from pathlib import Path

from prmflow.evaluation.policy import Evaluation
from prmflow.io import atomic_write_text
from prmflow.plots import Panel, csv_text, save


def write_plots(rep: dict, ev: Evaluation, plots_dir: str | Path, k: int) -> list[Path]:
    """CSV files for ``dvc plots`` and PNG renderings of them; returns the PNG paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots_dir = Path(plots_dir)
    by = rep["by_difficulty"]
    rows = ["difficulty,greedy_acc,pass@1,maj@k,pass@k,len_tokens_mean"]
    for d, m in by.items():
        rows.append(f"{d},{m['greedy_acc']:.4f},{m['pass@1']:.4f},{m[f'maj@{k}']:.4f},{m[f'pass@{k}']:.4f},{m['len_tokens_mean']:.2f}")
    atomic_write_text(plots_dir / "accuracy_by_difficulty.csv", "\n".join(rows) + "\n")
    lens = ["difficulty,tokens,steps,correct"]
    for p, t, s, ok in zip(ev.problems, ev.greedy_tokens, ev.greedy_steps(), ev.greedy_correct()):
        lens.append(f"{p['difficulty']},{t},{s},{int(ok)}")
    atomic_write_text(plots_dir / "lengths.csv", "\n".join(lens) + "\n")

    pngs = []
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ds = list(by)
    for key, label in (("greedy_acc", "greedy"), ("pass@1", "pass@1"), (f"maj@{k}", f"maj@{k}")):
        ax.plot(ds, [by[d][key] for d in ds], marker="o", label=label)
    ax.set(xlabel="difficulty (steps)", ylabel="accuracy", ylim=(0, 1), title="Accuracy by difficulty")
    ax.legend()
    fig.tight_layout()
    pngs.append(plots_dir / "accuracy_by_difficulty.png")
    fig.savefig(pngs[-1], dpi=100)
    plt.close(fig)
    pngs.append(before_after(rep, plots_dir))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(ev.greedy_tokens, bins=30)
    ax.set(xlabel="solution length (tokens)", ylabel="count", title="Reasoning length (greedy)")
    fig.tight_layout()
    pngs.append(plots_dir / "length_hist.png")
    fig.savefig(pngs[-1], dpi=100)
    plt.close(fig)
    return pngs


def before_after_rows(rep: dict) -> list[dict]:
    """Per difficulty, greedy accuracy and mean tokens of the base (before RL) and of the
    evaluated policy (after; empty when it is the base itself: RL has not run).

    >>> before_after_rows({"policy": "candidate", "by_difficulty": {"2": {"greedy_acc": 0.5, "len_tokens_mean": 9.0}},
    ...                    "base": {"by_difficulty": {"2": {"greedy_acc": 0.25, "len_tokens_mean": 10.0}}}})
    [{'difficulty': '2', 'base_greedy_acc': 0.25, 'candidate_greedy_acc': 0.5, 'base_tokens': 10.0, 'candidate_tokens': 9.0}]
    """
    after = rep["by_difficulty"] if rep.get("policy") == "candidate" else {}
    before = rep["base"]["by_difficulty"] if "base" in rep else rep["by_difficulty"]
    return [
        {
            "difficulty": d,
            "base_greedy_acc": m["greedy_acc"],
            "candidate_greedy_acc": after.get(d, {}).get("greedy_acc"),
            "base_tokens": m["len_tokens_mean"],
            "candidate_tokens": after.get(d, {}).get("len_tokens_mean"),
        }
        for d, m in before.items()
    ]


def before_after(rep: dict, plots_dir: Path) -> Path:
    """``before_after.csv`` (``dvc plots``) and its PNG: accuracy and length by difficulty,
    before RL (the base) and after (the candidate)."""
    rows = before_after_rows(rep)
    atomic_write_text(plots_dir / "before_after.csv", csv_text(rows, list(rows[0]) if rows else None))
    ds = [r["difficulty"] for r in rows]
    who = (("before RL (base)", "base"), ("after RL (candidate)", "candidate"))

    def lines(key: str) -> list:
        return [(label, ds, [r[f"{tag}_{key}"] for r in rows]) for label, tag in who]

    return save(
        plots_dir / "before_after.png",
        Panel("Greedy accuracy by difficulty", "difficulty (reasoning steps)", "accuracy", lines("greedy_acc"), ylim=(0, 1.02)),
        Panel("Reasoning length by difficulty", "difficulty (reasoning steps)", "mean tokens (greedy)", lines("tokens")),
    )
