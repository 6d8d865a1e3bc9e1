"""Fitting the ImageNet gate (core/gate.py) from ImageNet probabilities of clothing photos: which classes count as
clothing, and the log-odds below which a photo is not. No network is trained here: the ImageNet network never saw
these photos, so the only thing fitted is the class set and the threshold, and cross-validation measures both on
photos they were not chosen on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.gate import log_odds


@dataclass(frozen=True)
class GateFit:
    classes: tuple[int, ...]
    threshold: float


def clothing_classes(probabilities: np.ndarray, cover: float) -> tuple[int, ...]:
    """The fewest ImageNet classes that are the top-1 answer of at least ``cover`` of the photos, most frequent
    first (ties by class id)."""
    ids, counts = np.unique(probabilities.argmax(axis=1), return_counts=True)
    order = np.lexsort((ids, -counts))
    covered = np.cumsum(counts[order]) / len(probabilities)
    keep = int(np.searchsorted(covered, cover - 1e-12)) + 1
    return tuple(int(i) for i in ids[order[:keep]])


def scores(probabilities: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
    """Each photo's log-odds of the classes, as serving computes it."""
    index = np.asarray(classes)
    return np.array([log_odds(row, index) for row in probabilities])


def fit(probabilities: np.ndarray, cover: float, flag: float) -> GateFit:
    """The classes covering ``cover`` of the photos' top-1 answers, and the threshold ``flag`` of them fall below."""
    classes = clothing_classes(probabilities, cover)
    return GateFit(classes, float(np.quantile(scores(probabilities, classes), flag)))


def cross_validated(probabilities: np.ndarray, folds: list[np.ndarray], cover: float, flag: float) -> dict[str, Any]:
    """Fit on each fold's other photos, count its own photos flagged; ``folds``: boolean masks that partition them."""
    flagged = np.zeros(len(probabilities), dtype=bool)
    per_fold = []
    for held in folds:
        fitted = fit(probabilities[~held], cover, flag)
        flagged[held] = scores(probabilities[held], fitted.classes) < fitted.threshold
        per_fold.append(
            {
                "classes": len(fitted.classes),
                "threshold": round(fitted.threshold, 3),
                "held_out_flagged": round(float(flagged[held].mean()), 4),
            }
        )
    return {"held_out_flagged": round(float(flagged.mean()), 4), "flagged": flagged, "per_fold": per_fold}


def combined(distance: np.ndarray, threshold: float, from_distance: float, gate_says_not: np.ndarray) -> np.ndarray:
    """The serving rule (core/novelty.py's verdict with core/gate.py's band): not clothing when the distance is
    above the threshold, or the gate, asked for a distance above ``from_distance``, says so."""
    asked = (distance > from_distance) & (distance <= threshold)
    return (distance > threshold) | (asked & gate_says_not)


def rates(flagged: np.ndarray, groups: np.ndarray, kept_apart: set[str]) -> dict[str, Any]:
    """The share flagged over the development set (the kept-apart groups left out) and per group."""
    counted = ~np.isin(groups, list(kept_apart))
    return {
        "development_set_not_clothing": round(float(flagged[counted].mean()), 4),
        "by_group": {str(g): round(float(flagged[groups == g].mean()), 4) for g in sorted(set(groups.tolist()))},
    }
