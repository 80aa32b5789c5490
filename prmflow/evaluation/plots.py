"""Evaluation plots: CSV files for ``dvc plots`` and their PNG renderings (MLflow artifacts)."""

from __future__ import annotations

from pathlib import Path

from prmflow.evaluation.policy import Evaluation
from prmflow.io import atomic_write_text


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
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(ev.greedy_tokens, bins=30)
    ax.set(xlabel="solution length (tokens)", ylabel="count", title="Reasoning length (greedy)")
    fig.tight_layout()
    pngs.append(plots_dir / "length_hist.png")
    fig.savefig(pngs[-1], dpi=100)
    plt.close(fig)
    return pngs
