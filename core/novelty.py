"""Does a photo look like the clothing the model was trained on? The answer behind ``details``' verdict.

A classifier answers one of its labels for anything: the sample photo of a cat gets "shoes". Its softmax cannot
tell, because it was trained only to choose between labels. How far the photo's activations are from those of the
training photos can: a few layers' activations are extra outputs of the model, averaged over their positions, and
measured on held-out folds against photos of no clothing they separate them far better than the top score or the
energy of the logits (docs/verdict.md, lab/results/novelty.json).

Each layer's distance is Mahalanobis with one covariance for every centre (shrunk towards its mean variance, so that
its inverse is stable), to the nearest centre, divided by that centre's median distance over its own training
photos: 1.0 is a typical photo. The lab gives each label two centres, its photos as they are and shrunk onto a
plain background (lab/novelty_fit.py); serving only takes the nearest. ``clothing_distance`` is the mean over the
layers, and the manifest's threshold was chosen on photos the model never saw. The statistics ship beside the
model (``*.npz``): per layer a whitening matrix W (W^T W = the inverse covariance) and the centres already
whitened, so a request costs one matrix-vector product per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VERDICTS = ("clothing", "not_sure", "not_clothing")
STATISTICS = ("whitening", "centres", "scale")  # each layer's arrays in the .npz, in LayerDistance's order


@dataclass(frozen=True)
class NoveltyRule:
    """The manifest's ``novelty`` block: the statistics file beside the model and the distance threshold."""

    method: str  # "mahalanobis", the one this module computes
    statistics_file: str
    sha256: str
    threshold: float  # a clothing_distance above it: "not_clothing"


class LayerDistance:
    """One layer's pooled activation -> its distance from the nearest centre of training photos (1.0: a typical one)."""

    def __init__(self, whitening: np.ndarray, centres: np.ndarray, scale: np.ndarray) -> None:
        self.whitening = np.ascontiguousarray(whitening, dtype=np.float32)  # (D, D)
        self.centres = np.ascontiguousarray(centres, dtype=np.float32)  # (centres, D), whitened means
        self.scale = np.asarray(scale, dtype=np.float32)  # (centres,), each centre's median training distance
        length = self.whitening.shape[1]
        if self.whitening.shape != (length, length) or self.centres.shape[1:] != (length,):
            raise ValueError(f"whitening {self.whitening.shape} and centres {self.centres.shape} do not match")
        if self.scale.shape != (self.centres.shape[0],) or not np.all(self.scale > 0):
            raise ValueError("scale must hold one positive number per centre")
        self._centre_norms = np.square(self.centres).sum(axis=1)  # |c|^2 of |Wx - c|^2, once, not per photo

    @property
    def length(self) -> int:
        """The channels of the activation it measures."""
        return int(self.whitening.shape[1])

    def __call__(self, pooled: np.ndarray) -> float:
        """One photo's distance: ``batch`` of one row, so serving computes exactly what the lab measured."""
        return float(self.batch(np.asarray(pooled).reshape(1, -1))[0])

    def batch(self, pooled: np.ndarray) -> np.ndarray:
        """The distance of each row of ``pooled`` (N, D)."""
        whitened = np.asarray(pooled, dtype=np.float32) @ self.whitening.T
        squared = np.square(whitened).sum(axis=1, keepdims=True) - 2 * whitened @ self.centres.T + self._centre_norms
        return np.asarray((np.sqrt(np.maximum(squared, 0)) / self.scale).min(axis=1))


def pool(activation: np.ndarray, channels: int) -> np.ndarray:
    """An activation (flattened NHWC, or already pooled) averaged over its positions: (channels,) float32."""
    return np.asarray(activation, dtype=np.float32).reshape(-1, channels).mean(axis=0)


class ClothingDistance:
    """The model's extra outputs (one activation per layer) -> the mean of the layers' distances: 1.0 is a typical
    training photo. Several layers, because each misses what the others see: the last ones know the labels, the
    earlier ones textures and shapes (measured: lab/results/novelty.json)."""

    def __init__(self, layers: Sequence[LayerDistance], names: Sequence[str] = ()) -> None:
        if not layers:
            raise ValueError("no layer statistics")
        self.layers = tuple(layers)
        self.names = tuple(names) or tuple(f"layer {i}" for i in range(len(layers)))

    @property
    def lengths(self) -> list[int]:
        return [layer.length for layer in self.layers]

    @classmethod
    def load(cls, path: Path) -> ClothingDistance:
        """From the ``.npz`` lab/novelty_fit.py writes: ``layers`` (names), and for each layer i ``whitening_i``
        (float16, to halve the zip), ``centres_i``, ``scale_i``. Raises OSError, ValueError or KeyError for a
        file that is not one."""
        with np.load(path, allow_pickle=False) as stats:
            names = [str(name) for name in stats["layers"]]
            return cls([LayerDistance(*(stats[f"{key}_{i}"] for key in STATISTICS)) for i in range(len(names))], names)

    def __call__(self, activations: Sequence[np.ndarray]) -> float:
        pairs = zip(self.layers, activations, strict=True)
        return sum(layer(pool(activation, layer.length)) for layer, activation in pairs) / len(self.layers)

    def batch(self, pooled: Sequence[np.ndarray]) -> np.ndarray:
        """Each photo's distance, from each layer's pooled activations (N, D_i)."""
        return np.mean([layer.batch(p) for layer, p in zip(self.layers, pooled, strict=True)], axis=0)


def verdict(
    distance: float | None,
    threshold: float | None,
    confidence: float,
    not_sure_below: float | None,
    gate_says_not: bool | None = None,
) -> str | None:
    """ "not_clothing" when the photo is far from every label's training photos, or the ImageNet gate (gate.py)
    sees no clothing in it; "not_sure" when it is clothing but the calibrated top probability is below the
    manifest's bar; "clothing" otherwise. None when the model's manifest has no rule at all (a third-party model
    without the statistics). ``gate_says_not``: None where the gate was not asked."""
    if distance is None and not_sure_below is None and gate_says_not is None:
        return None
    if distance is not None and threshold is not None and distance > threshold or gate_says_not:
        return "not_clothing"
    if not_sure_below is not None and confidence < not_sure_below:
        return "not_sure"
    return "clothing"
