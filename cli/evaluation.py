"""Accuracy and the confusion matrix, computed once for `python -m cli classify --evaluate` and
`model/evaluate.py`, shown as text or drawn as a PNG."""

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


def evaluate_rows(rows: Iterable[dict[str, Any]], labels: Sequence[str]) -> dict[str, Any]:
    """The bulk command's rows against each image's folder name, where that name is one of the model's labels."""
    return score(
        (
            (Path(row["path"]).parent.name, row["label"])
            for row in rows
            if not row["error"] and Path(row["path"]).parent.name in labels
        ),
        labels,
    )


def confusion_text(result: dict[str, Any]) -> str:
    labels = result["labels"]
    width = max(len(label) for label in labels) + 1
    lines = ["true \\ predicted".ljust(width) + " ".join(label[:6].rjust(6) for label in labels)]
    lines += [
        label.ljust(width) + " ".join(str(n).rjust(6) for n in row)
        for label, row in zip(labels, result["confusion"], strict=False)
    ]
    return "\n".join(lines)


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
