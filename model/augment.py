"""The training augmentations, shared by the default model (model/train.py) and the Xception trained for the
quantization benchmark (bench/xception_train.py). Keras only: nothing else need be installed to import it."""


def augmentation(
    keras,
    seed: int,
    rotation: float = 0.05,
    zoom: float = 0.2,
    shift: float = 0.1,
    dtype=None,
    zoom_out: float | None = None,
    randaugment: int = 0,
    erasing: float = 0.0,
):
    """Flip, rotate, zoom, translate, contrast, brightness, on raw pixels (0-255); ``dtype`` None: the policy's.

    Levers (off by default; model/README.md measures them): ``zoom_out`` zooms out further than in (garments
    smaller in the frame), ``randaugment`` applies that many RandAugment operations, ``erasing`` fills a random
    rectangle (14-57% of each side) with noise, each photo's chance of it drawn from 0 to ``erasing`` (Keras'
    RandomErasing)."""
    layers = keras.layers
    steps = [
        layers.RandomFlip("horizontal", seed=seed, dtype=dtype),
        layers.RandomRotation(rotation, fill_mode="reflect", seed=seed + 1, dtype=dtype),
        # Keras: a negative factor zooms in, a positive one out.
        layers.RandomZoom(
            (-zoom, zoom if zoom_out is None else zoom_out), fill_mode="reflect", seed=seed + 2, dtype=dtype
        ),
        layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=seed + 3, dtype=dtype),
        layers.RandomContrast(0.2, seed=seed + 4, dtype=dtype),
        layers.RandomBrightness(0.15, value_range=(0, 255), seed=seed + 5, dtype=dtype),
    ]
    if randaugment:
        steps.append(layers.RandAugment(value_range=(0, 255), num_ops=randaugment, seed=seed + 6, dtype=dtype))
    if erasing:
        steps.append(layers.RandomErasing(factor=erasing, value_range=(0, 255), seed=seed + 7, dtype=dtype))
    return keras.Sequential(steps, name="augment")


def shrink_onto_background(tf, probability: float, min_scale: float = 0.4, max_scale: float = 1.0):
    """A tf.data map over (image, label): with ``probability``, the image shrunk to a random ``min_scale`` to
    ``max_scale`` of its size and put at a random spot on a canvas of its border's mean colour — a small garment in
    a large frame (the dataset's garments fill most of their photos; users' photos often do not)."""

    def shrink(x, y):
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
