"""The training augmentations, shared by the default model (lab/train.py) and the Xception trained for the
quantization benchmark (bench/xception_train.py). Keras and TensorFlow are imported by the functions that build
them, so importing this module costs nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def augmentation(
    seed: int, rotation: float = 0.05, zoom: float = 0.2, shift: float = 0.1, dtype: str | None = None
) -> Any:
    """Flip, rotate, zoom, translate, contrast, brightness, on raw pixels (0-255); ``dtype`` None: the policy's.

    A Keras Sequential of random layers, each seeded from ``seed``, applied with ``training=True``; ``zoom`` and
    ``shift`` at 0 (the pretrained recipe's: the whole garment stays in the frame) add no layer."""
    import keras

    layers = keras.layers
    steps = [
        layers.RandomFlip("horizontal", seed=seed, dtype=dtype),
        layers.RandomRotation(rotation, fill_mode="reflect", seed=seed + 1, dtype=dtype),
    ]
    # At 0 they would be identities; left out, the other layers draw the same numbers (each has its own seed).
    if zoom:  # Keras: a negative factor zooms in, a positive one out
        steps.append(layers.RandomZoom((-zoom, zoom), fill_mode="reflect", seed=seed + 2, dtype=dtype))
    if shift:
        steps.append(layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=seed + 3, dtype=dtype))
    steps += [
        layers.RandomContrast(0.2, seed=seed + 4, dtype=dtype),
        layers.RandomBrightness(0.15, value_range=(0, 255), seed=seed + 5, dtype=dtype),
    ]
    return keras.Sequential(steps, name="augment")


def shrink_onto_background(
    probability: float, min_scale: float = 0.4, max_scale: float = 1.0
) -> Callable[[Any, Any], tuple[Any, Any]]:
    """A tf.data map over (image, label): with ``probability``, the image shrunk to a random ``min_scale`` to
    ``max_scale`` of its size and put at a random spot on a canvas of its border's mean colour — a small garment in
    a large frame (the dataset's garments fill most of their photos; users' photos often do not)."""
    import tensorflow as tf

    def shrink(x: Any, y: Any) -> tuple[Any, Any]:
        image = tf.cast(x, tf.float32)
        height, width = image.shape[0], image.shape[1]
        colour = tf.reduce_mean(tf.concat([image[0], image[-1], image[:, 0], image[:, -1]], axis=0), axis=0)
        scale = tf.random.uniform([], min_scale, max_scale)
        new_height = tf.maximum(tf.cast(height * scale, tf.int32), 1)
        new_width = tf.maximum(tf.cast(width * scale, tf.int32), 1)
        small = tf.image.resize(image, tf.stack([new_height, new_width]), antialias=True)
        top = tf.random.uniform([], 0, height - new_height + 1, dtype=tf.int32)
        left = tf.random.uniform([], 0, width - new_width + 1, dtype=tf.int32)
        placed = tf.image.pad_to_bounding_box(small - colour, top, left, height, width) + colour
        return tf.cond(tf.random.uniform([]) < probability, lambda: placed, lambda: image), y

    return shrink
