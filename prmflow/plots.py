"""Figures for people: PNG renderings of the CSV files the stages write for ``dvc plots``.

A figure is one or more :class:`Panel` s of lines side by side. Legends go under the axes, so
they never cover a curve. matplotlib (Agg backend) is imported only when a figure is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Panel:
    """One set of axes: ``lines`` are ``(label, xs, ys)``; ``None`` in ys is a gap."""

    title: str
    xlabel: str
    ylabel: str
    lines: list[tuple[str, list, list]] = field(default_factory=list)
    ylim: tuple[float, float] | None = None
    diagonal: str | None = None
    """Label of a dashed ``y = x`` line (chance for a ROC, perfect calibration), or ``None``."""
    hline: tuple[float, str] | None = None
    """``(y, label)`` of a dotted horizontal line (a target)."""


def save(path: str | Path, *panels: Panel, panel_width: float = 4.6) -> Path:
    """Draw ``panels`` side by side into the PNG ``path`` (its folder created); returns it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(panels), figsize=(panel_width * len(panels), 3.9), squeeze=False)
    for ax, p in zip(axes[0], panels):
        for label, xs, ys in p.lines:
            pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o" if len(pts) <= 25 else None, markersize=4, label=label)
        if p.diagonal:
            ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label=p.diagonal)
        if p.hline:
            ax.axhline(p.hline[0], linestyle=":", color="grey", linewidth=1, label=p.hline[1])
        ax.set(title=p.title, xlabel=p.xlabel, ylabel=p.ylabel)
        if p.ylim:
            ax.set_ylim(*p.ylim)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def csv_text(rows: list[dict], columns: list[str] | None = None) -> str:
    """``rows`` as CSV (floats to 4 decimals, ``None`` empty), columns in first-seen order.

    >>> print(csv_text([{"n": 1, "acc": 0.5}, {"n": 2, "acc": None}]), end="")
    n,acc
    1,0.5000
    2,
    """
    columns = columns or list(dict.fromkeys(k for r in rows for k in r))
    cell = lambda v: "" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    return "\n".join([",".join(columns)] + [",".join(cell(r.get(c)) for c in columns) for r in rows]) + "\n"
