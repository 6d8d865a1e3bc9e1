"""Load an image-folder split (``<root>/<split>/<label>/*.jpg``) the way serving sees it.

Images are turned upright by their EXIF Orientation (as serving does: core/images.py) and resized with
``keras_image_helper`` itself (RGB, nearest-neighbour resize to the full target size, no aspect-ratio keeping),
so training, evaluation and serving all start from identical pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from keras_image_helper import create_preprocessor
from PIL import Image

from core.images import IMAGE_SUFFIXES, upright


def discover_labels(split_dir: Path) -> list[str]:
    """The labels of a folder-per-label split: its sub-folders' names, sorted (the model's output order)."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise FileNotFoundError(f"data folder not found: {split_dir}")
    labels = sorted(d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(labels) < 2:
        raise FileNotFoundError(f"{split_dir} needs at least two label folders, found {len(labels)}")
    return labels


def list_split(split_dir: Path, labels: Sequence[str]) -> tuple[list[Path], np.ndarray]:
    """Image paths and integer label ids of one split, in a stable (sorted) order."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise FileNotFoundError(f"data folder not found: {split_dir}")
    paths: list[Path] = []
    ids: list[int] = []
    for index, label in enumerate(labels):
        folder = split_dir / label
        if not folder.is_dir():
            raise FileNotFoundError(f"label folder missing: {folder}")
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(path)
                ids.append(index)
    return paths, np.asarray(ids, dtype=np.int64)


def all_photos(data_dir: Path, labels: Sequence[str]) -> tuple[list[Path], np.ndarray]:
    """Every photo of train + validation, in that order (the photos cross-validation splits and the shipped model
    trains on), with their label ids."""
    train, train_ids = list_split(Path(data_dir) / "train", labels)
    validation, validation_ids = list_split(Path(data_dir) / "validation", labels)
    return train + validation, np.concatenate([train_ids, validation_ids])


def load_pixels(paths: Sequence[Path | str], size: int, mode: str = "xception") -> np.ndarray:
    """uint8 array (N, size, size, 3), resized exactly as keras_image_helper resizes before preprocessing."""
    preprocessor = create_preprocessor(mode, target_size=(size, size))
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        with Image.open(path) as img:
            out[i] = np.asarray(preprocessor.resize_image(upright(img)), dtype=np.uint8)
    return out


def xception_scale(x: Any) -> Any:
    """keras_image_helper's 'xception' mode, as serving prepares a photo: 0..255 to -1..1 (any array or tensor)."""
    return x / 127.5 - 1.0
