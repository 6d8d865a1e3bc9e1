"""Accuracy and the confusion matrix of (true, predicted) label pairs, and the matrix drawn as a PNG.

Shared by the lab's evaluations and the command line's ``classify --evaluate``; it imports nothing heavier than
the standard library (matplotlib only when drawing), so the command line can use it without the lab's stack.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


def score(pairs: Iterable[tuple[str, str]], labels: Sequence[str]) -> dict[str, Any]:
    """(true label, predicted label) pairs -> images, accuracy, per-label accuracy (labels with photos) and the
    confusion matrix (rows: true, columns: predicted, in ``labels`` order)."""
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    images = 0
    for truth, predicted in pairs:
        confusion[index[truth]][index[predicted]] += 1
        images += 1
    correct = sum(confusion[i][i] for i in range(len(labels)))
    return {
        "images": images,
        "accuracy": round(correct / images, 4) if images else None,
        "per_label_accuracy": {
            label: round(confusion[i][i] / sum(confusion[i]), 4) for i, label in enumerate(labels) if sum(confusion[i])
        },
        "labels": list(labels),
        "confusion": confusion,
    }


def confusion_png(labels: Sequence[str], matrix: Sequence[Sequence[int]], title: str, path: str | Path) -> None:
    """Rows: true label, columns: predicted; each cell's count written in it."""
    import matplotlib  # imported here: only drawing needs it

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
