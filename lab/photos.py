"""The photos a run trains on and the ones it holds out: the dataset's own split, a cross-validation fold of it,
or every photo, loaded once as uint8 pixels."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lab.dataset import discover_labels, list_split, load_pixels
from lab.recipe import Recipe, TrainingError


@dataclass(frozen=True)
class Photos:
    """A run's photos as uint8 pixels and label ids: the ones it trains on and the ones it holds out."""

    labels: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    val_paths: list[str]


def load_data(recipe: Recipe) -> Photos:
    """uint8 pixels and label ids of the photos the run trains on and holds out, and the labels (the train
    folder's sub-folders, sorted)."""
    data = recipe.data_dir
    t0 = time.time()
    try:
        labels = discover_labels(data / "train")
        train_paths, y_train = list_split(data / "train", labels)
        val_paths, y_val = list_split(data / "validation", labels)
    except FileNotFoundError as exc:
        raise TrainingError(f"{exc} (--data-dir must hold train/ and validation/, one folder per label)") from None
    if recipe.fold is not None:
        (train_paths, y_train), (val_paths, y_val) = cross_validation_split(
            train_paths + val_paths, np.concatenate([y_train, y_val]), recipe.fold, recipe.seed
        )
    if recipe.all_photos:
        train_paths, y_train = train_paths + val_paths, np.concatenate([y_train, y_val])
        val_paths, y_val = [], y_val[:0]
    if recipe.limit:
        keep = np.random.default_rng(recipe.seed).permutation(len(train_paths))[: recipe.limit]
        train_paths, y_train = [train_paths[i] for i in keep], y_train[keep]
    x_train = load_pixels(train_paths, recipe.image_size)
    x_val = load_pixels(val_paths, recipe.image_size) if val_paths else x_train[:0]
    print(
        f"loaded {len(x_train)} train / {len(x_val)} validation images of {len(labels)} labels "
        f"({', '.join(labels)}) at {recipe.image_size}px in {time.time() - t0:.1f}s",
        flush=True,
    )
    return Photos(labels, x_train, y_train, x_val, y_val, [str(path) for path in val_paths])


def cross_validation_split(
    paths: list[Path], ids: np.ndarray, fold: tuple[int, int], seed: int
) -> tuple[tuple[list[Path], np.ndarray], tuple[list[Path], np.ndarray]]:
    """Fold ``(I, K)`` of a stratified K-fold split: every label's photos shuffled (by ``seed``) and dealt
    round-robin, so each fold holds each label's share; the folds partition the photos. (train, held-out) as
    (paths, ids)."""
    index, count = fold
    rng = np.random.default_rng(seed)
    held = np.zeros(len(paths), dtype=bool)
    for label in np.unique(ids):
        members = rng.permutation(np.flatnonzero(ids == label))
        held[members[index::count]] = True

    def pick(mask: np.ndarray) -> tuple[list[Path], np.ndarray]:
        return [paths[i] for i in np.flatnonzero(mask)], ids[mask]

    return pick(~held), pick(held)
