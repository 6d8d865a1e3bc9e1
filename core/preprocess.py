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
from collections.abc import Callable

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
        # take() along each axis: about half the time of fancy indexing on an (H, W, 3) array
        sampled = image.take(nearest_indices(image.shape[0], height), 0).take(nearest_indices(image.shape[1], width), 1)
        return sampled if sampled.ndim == 3 else np.repeat(sampled[:, :, np.newaxis], 3, axis=2)  # L -> RGB

    def scale(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 RGB (height, width, 3) -> the mode's float32 batch of one."""
        x = pixels.astype(np.float32)[np.newaxis]
        if self.mode in TF_MODES:
            x /= 127.5
            x -= 1.0
            return x
        x = x[..., ::-1]
        for channel, mean in enumerate(CAFFE_MEANS):
            x[..., channel] -= mean
        return x

    def __call__(self, image: Image.Image | np.ndarray) -> np.ndarray:
        return self.scale(self.resize(image))

    def lookup(self, quantize: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
        """For an integer model: sampled pixels -> ``quantize(scale(pixels))`` by table lookup. Each value depends
        only on its pixel's value and channel, so a table of the 256 values per channel, made by ``scale`` and
        ``quantize`` themselves, gives the same batch without the float arrays in between (4x faster)."""
        ramp = np.repeat(np.arange(256, dtype=np.uint8)[:, np.newaxis, np.newaxis], 3, axis=2)  # (256, 1, 3)
        table = quantize(self.scale(ramp))[0, :, 0, :]  # (256 values, 3 output channels)
        if self.mode in TF_MODES:  # the same scaling for every channel: one lookup
            single = np.ascontiguousarray(table[:, 0])
            return lambda pixels: np.take(single, pixels)[np.newaxis]
        columns = [np.ascontiguousarray(table[:, c]) for c in range(3)]

        def per_channel(pixels: np.ndarray) -> np.ndarray:
            out = np.empty((1, *pixels.shape), table.dtype)
            for c, column in enumerate(columns):  # output channel c is input channel 2 - c (RGB -> BGR)
                np.take(column, pixels[..., 2 - c], out=out[0, ..., c])
            return out

        return per_channel


@functools.lru_cache(maxsize=256)
def nearest_indices(size_in: int, size_out: int) -> np.ndarray:
    """For each of ``size_out`` positions along one axis, the source index Pillow's nearest-neighbour resize
    takes: a one-pixel-high image of the indices 0..size_in-1, resized by Pillow."""
    line = Image.fromarray(np.arange(size_in, dtype=np.int32)[np.newaxis])
    indices = np.asarray(line.resize((size_out, 1), Image.Resampling.NEAREST))[0].astype(np.intp)
    indices.setflags(write=False)  # shared by every request: read-only
    return indices
