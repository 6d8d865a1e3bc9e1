"""The bulk command's rows scored against their folders' labels, and the confusion matrix as text; the scoring
and the PNG are lab/scoring.py's, shared with `python -m lab.evaluate`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lab.scoring import confusion_png, score

__all__ = ["confusion_png", "confusion_text", "evaluate_rows", "score"]


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
