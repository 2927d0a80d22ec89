"""Precision-recall curves of a WIDER evaluation as a PNG (matplotlib, headless)."""

from __future__ import annotations

import os

from retinakit.evaluation.wider import WiderResult


def plot_pr_curves(result: WiderResult, path: str | os.PathLike, title: str = "WIDER FACE") -> None:
    """One labelled curve per setting (easy / medium / hard, or ``all``) with its AP in the legend."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5), dpi=110)
    for setting in result.ap:
        curve = result.curves[setting]
        ax.plot(curve["recall"], curve["precision"], label=f"{setting}: AP {100 * result.ap[setting]:.2f}")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
