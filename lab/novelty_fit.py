"""The novelty statistics serving reads (core/novelty.py), fitted on a model's pooled activations of its training
photos, and those activations read through the serving code.

Fitting, per layer: each label's mean, one covariance for all labels shrunk by ``SHRINKAGE`` towards its mean
variance (hundreds of int8 channels over ~2,700 photos are nearly collinear; the shrinkage keeps the inverse
stable and held-out photos no farther than they are), and its inverse square root as the whitening matrix. The
whitening ships as float16 (half the zip); each label's scale is its median distance computed with those rounded
numbers, so the lab measures exactly what serving computes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.novelty import STATISTICS, ClothingDistance, LayerDistance, pool

# The layers measured, by their Keras names (lab/feature_output.py), chosen on a held-out fold (lab/notebook.md):
# the first depthwise activation at 6 x 6, the output of the last 192-channel block and of the last block. The
# 12 x 12 stage flags nearly every small garment on a plain background (a shifted but real clothing photo); the
# pooled features the scores are made from let more photos of no clothing pass.
LAYERS = ("block11_bn1", "block14_add", "block15_bn2")
SHRINKAGE = 0.1

Pooled = list[np.ndarray]  # one (N, D_i) array per layer


def fit_layer(features: np.ndarray, labels: np.ndarray, shrinkage: float = SHRINKAGE) -> dict[str, np.ndarray]:
    """One layer's arrays (``whitening`` float16, ``centres``, ``scale``) for activations (N, D) of photos of
    integer ``labels`` (N,); only the labels present get a centre."""
    features = np.asarray(features, dtype=np.float64)
    present, own = np.unique(labels, return_inverse=True)
    means = np.stack([features[own == k].mean(axis=0) for k in range(len(present))])
    centred = features - means[own]
    covariance = centred.T @ centred / len(features)
    size = len(covariance)
    covariance = (1 - shrinkage) * covariance + shrinkage * np.trace(covariance) / size * np.eye(size)
    values, vectors = np.linalg.eigh(covariance)
    whitening = ((vectors / np.sqrt(values)) @ vectors.T).astype(np.float16)
    w = whitening.astype(np.float32)
    centres = (means.astype(np.float32) @ w.T).astype(np.float32)
    whitened = features.astype(np.float32) @ w.T
    distances = np.sqrt(np.square(whitened - centres[own]).sum(axis=1))
    scale = np.array([np.median(distances[own == k]) for k in range(len(present))], dtype=np.float32)
    return {"whitening": whitening, "centres": centres, "scale": scale}


def fit_statistics(pooled: Pooled, labels: np.ndarray, shrinkage: float = SHRINKAGE) -> list[dict[str, np.ndarray]]:
    return [fit_layer(layer, labels, shrinkage) for layer in pooled]


def fit_with_small_views(plain: Pooled, small: Pooled, labels: np.ndarray, label_count: int) -> list[dict[str, Any]]:
    """Statistics with two centres per label and one covariance: its photos as they are, and the same photos shrunk
    onto their border's colour (``lab.novelty.small_garment_of``, what the training recipe's ``shrink`` does to a
    fifth of its photos). Fitted on the photos alone, a garment small in a plain frame sits as far from them as a
    photo of no clothing does (docs/verdict.md)."""
    both = [np.concatenate([p, s]) for p, s in zip(plain, small, strict=True)]
    return fit_statistics(both, np.concatenate([labels, labels + label_count]))


def distance_of(statistics: Sequence[dict[str, np.ndarray]], names: Sequence[str] = ()) -> ClothingDistance:
    return ClothingDistance([LayerDistance(*(layer[key] for key in STATISTICS)) for layer in statistics], names)


def save_statistics(path: Path, statistics: Sequence[dict[str, np.ndarray]], names: Sequence[str]) -> None:
    """Uncompressed: the float16 matrices barely compress, and the deployment zip compresses anyway."""
    arrays: dict[str, Any] = {f"{key}_{i}": layer[key] for i, layer in enumerate(statistics) for key in STATISTICS}
    with open(path, "wb") as fh:
        np.savez(fh, layers=np.array(names), **arrays)


class FeatureReader:
    """Photos -> (logits, each layer's pooled activations), decoded and prepared as serving prepares them
    (``Classifier.prepare``), through a copy of the model with those activations exposed (lab/feature_output.py)."""

    def __init__(self, manifest: Path, layers: Sequence[str] = LAYERS) -> None:
        from core.interpreter import find_runtime
        from core.model import Classifier
        from lab.feature_output import expose_features, scores_only

        self.classifier = Classifier(manifest, threads=1)
        single = scores_only(self.classifier.loaded_manifest().model_path.read_bytes())
        exposed, self.lengths = expose_features(single, layers)
        self.interpreter = find_runtime()[1](model_content=exposed, num_threads=1)
        self.interpreter.allocate_tensors()

    def read(
        self, paths: Iterable[Path], transform: Callable[[bytes], bytes] | None = None
    ) -> tuple[np.ndarray, Pooled]:
        """Each photo's logits and pooled activations; ``transform`` changes a photo's bytes first."""
        from core.model import DecodeRules, invoke

        rules = DecodeRules.for_input(self.classifier.loaded_manifest().input_size, 10**8, 2_000_000)
        logits: list[np.ndarray] = []
        pooled: list[list[np.ndarray]] = [[] for _ in self.lengths]
        for path in paths:
            data = Path(path).read_bytes()
            scores, *activations = invoke(
                self.interpreter, self.classifier.prepare(transform(data) if transform else data, rules)
            )
            logits.append(scores)
            for i, (activation, length) in enumerate(zip(activations, self.lengths, strict=True)):
                pooled[i].append(pool(activation, length))
        return np.stack(logits), [np.stack(layer) for layer in pooled]


def cached_features(
    cache: Path, read: Callable[[], tuple[np.ndarray, Pooled]], paths: list[Path], layers: Sequence[str] = LAYERS
) -> tuple[np.ndarray, Pooled]:
    """``read()``'s logits and pooled ``layers`` of ``paths``, kept in ``cache`` (an .npz) keyed by both."""
    keys, names = np.array([str(p) for p in paths]), np.array(list(layers))
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as stored:
            same = {"paths": keys, "layers": names}
            if all(k in stored.files and np.array_equal(stored[k], v) for k, v in same.items()):
                return stored["logits"], [stored[f"layer_{i}"] for i in range(len(names))]
    logits, pooled = read()
    arrays: dict[str, Any] = {f"layer_{i}": p for i, p in enumerate(pooled)}
    np.savez(cache, paths=keys, layers=names, logits=logits, **arrays)
    return logits, pooled
