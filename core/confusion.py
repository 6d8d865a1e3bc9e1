"""A confusion matrix drawn as a PNG: for `python -m core classify --evaluate` and `model/evaluate.py`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def confusion_png(labels: Sequence[str], matrix: Sequence[Sequence[int]], title: str, path: str | Path) -> None:
    """Rows: true label, columns: predicted; each cell's count written in it."""
    import matplotlib  # imported here: only these two tools draw

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = max((max(row) for row in matrix), default=0)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i, row in enumerate(matrix):
        for j, count in enumerate(row):
            color = "white" if count > top / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=color, fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
