"""A decoded image -> the float32 batch the model takes: keras_image_helper's preparation, without importing it.

keras_image_helper (the book's library) imports ``urllib.request`` for its ``from_url``, which serving never calls:
about 25 ms of a cold start's CPU (docs/performance.md, "Cold start"). Its preparation is short: RGB, a
nearest-neighbour resize to the full target size, float32, a batch of one, the mode's scaling. The library stays
the reference: tests/core/test_preprocess.py holds this module to its output, byte for byte, in every mode.

Pixels libjpeg-turbo decoded (jpeg.py) arrive as a numpy array and are sampled where they lie: copying a 12 MP
array into a Pillow image costs more than the decode saves. The rows and columns taken are the ones Pillow's
nearest-neighbour resize takes, found by Pillow itself (``nearest_indices``), so both inputs give Keras' array.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

TF_MODES = ("xception", "inception_v3")  # 0..255 -> -1..1
CAFFE_MODES = ("resnet50", "vgg16")  # RGB -> BGR, less the ImageNet channel means
MODES = TF_MODES + CAFFE_MODES
CAFFE_MEANS = (103.939, 116.779, 123.68)  # B, G, R


class Preprocessor:
    """``mode`` is a manifest's ``preprocessing``; ``target_size`` is (width, height), as PIL takes it."""

    def __init__(self, mode: str, target_size: tuple[int, int]) -> None:
        if mode.lower() not in MODES:
            raise ValueError(f"unknown preprocessing {mode!r}; known: {', '.join(MODES)}")
        self.mode = mode.lower()
        self.target_size = target_size

    def resize(self, image: Image.Image | np.ndarray) -> np.ndarray:
        """uint8 RGB (height, width, 3) at the target size, sampled by nearest neighbour (the aspect ratio is not
        kept), as Keras does. Resizing before the RGB conversion gives the same pixels (every conversion is per
        pixel) for less work."""
        width, height = self.target_size
        if isinstance(image, Image.Image):
            return np.asarray(image.resize(self.target_size, Image.Resampling.NEAREST).convert("RGB"))
        sampled = image[nearest_indices(image.shape[0], height)][:, nearest_indices(image.shape[1], width)]
        return sampled if sampled.ndim == 3 else np.repeat(sampled[:, :, np.newaxis], 3, axis=2)  # L -> RGB

    def area_resize(self, image: Image.Image | np.ndarray) -> np.ndarray:
        """uint8 RGB at the target size for pixels the DCT reduced to at least twice it: averaged over blocks of
        k x k pixels (the largest whole k that stays at or above the target), then sampled as ``resize`` samples."""
        if isinstance(image, np.ndarray):
            image = Image.fromarray(np.ascontiguousarray(image))
        k = max(1, min(image.width // self.target_size[0], image.height // self.target_size[1]))
        return self.resize(image.reduce(k) if k > 1 else image)

    def __call__(self, image: Image.Image | np.ndarray, area: bool = False) -> np.ndarray:
        x = (self.area_resize(image) if area else self.resize(image)).astype(np.float32)[np.newaxis]
        if self.mode in TF_MODES:
            x /= 127.5
            x -= 1.0
            return x
        x = x[..., ::-1]
        for channel, mean in enumerate(CAFFE_MEANS):
            x[..., channel] -= mean
        return x


@functools.lru_cache(maxsize=256)
def nearest_indices(size_in: int, size_out: int) -> np.ndarray:
    """For each of ``size_out`` positions along one axis, the source index Pillow's nearest-neighbour resize
    takes: a one-pixel-high image of the indices 0..size_in-1, resized by Pillow."""
    line = Image.fromarray(np.arange(size_in, dtype=np.int32)[np.newaxis])
    indices = np.asarray(line.resize((size_out, 1), Image.Resampling.NEAREST))[0].astype(np.intp)
    indices.setflags(write=False)  # shared by every request: read-only
    return indices
