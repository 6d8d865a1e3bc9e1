"""How a run's photos reach the network: shuffled, shrunk, augmented and mixed-up batches for training and scaled
held-out photos, through tf.data on TensorFlow's Keras backend and lab/batches.py on the others."""

from __future__ import annotations

from typing import Any

from lab.dataset import xception_scale
from lab.photos import Photos
from lab.recipe import Recipe, TrainingError


def check_backend(recipe: Recipe, backend: str) -> None:
    """--shrink is a tf.data map: refused on any other Keras backend before anything is loaded."""
    if backend != "tensorflow" and recipe.shrink > 0:
        raise TrainingError(
            f"--shrink {recipe.shrink:g} runs in tf.data: it needs KERAS_BACKEND=tensorflow, not {backend} "
            "(--shrink 0 trains without it)"
        )


def input_pipeline(recipe: Recipe, photos: Photos, backend: str) -> tuple[Any, Any | None]:
    """Training batches and held-out data: tf.data on TensorFlow, batches on the backend's device elsewhere."""
    if backend != "tensorflow":  # PyTorch, typically on a GPU: no tf.data
        return make_batches(recipe, photos)
    import tensorflow as tf

    if recipe.threads:
        tf.config.threading.set_intra_op_parallelism_threads(recipe.threads)
    return make_datasets(recipe, photos)


def training_augmentation(recipe: Recipe) -> Any:
    from lab.augment import augmentation

    return augmentation(recipe.seed, recipe.rotation, recipe.zoom, recipe.shift)


def make_datasets(recipe: Recipe, photos: Photos) -> tuple[Any, Any | None]:
    """tf.data pipelines: the training photos shuffled, shrunk, augmented, mixed up; the held-out ones scaled."""
    import tensorflow as tf

    from lab.augment import shrink_onto_background

    augment = training_augmentation(recipe)
    num_classes, seed = len(photos.labels), recipe.seed

    def train_map(x: Any, y: Any) -> tuple[Any, Any]:
        x = augment(tf.cast(x, tf.float32), training=True)
        return xception_scale(tf.clip_by_value(x, 0.0, 255.0)), tf.one_hot(y, num_classes)

    def mixup(x: Any, y: Any) -> tuple[Any, Any]:
        g1 = tf.random.gamma([tf.shape(x)[0]], recipe.mixup, seed=seed)
        g2 = tf.random.gamma([tf.shape(x)[0]], recipe.mixup, seed=seed + 7)
        lam = g1 / (g1 + g2)
        perm = tf.random.shuffle(tf.range(tf.shape(x)[0]), seed=seed)
        lx = tf.reshape(lam, [-1, 1, 1, 1])
        ly = tf.reshape(lam, [-1, 1])
        return lx * x + (1 - lx) * tf.gather(x, perm), ly * y + (1 - ly) * tf.gather(y, perm)

    train = tf.data.Dataset.from_tensor_slices((photos.x_train, photos.y_train)).shuffle(
        len(photos.x_train), seed=seed, reshuffle_each_iteration=True
    )
    if recipe.shrink > 0:  # per photo, before the batch's augmentations
        train = train.map(shrink_onto_background(recipe.shrink), num_parallel_calls=tf.data.AUTOTUNE)
    train = train.batch(recipe.batch_size, drop_remainder=True).map(train_map, num_parallel_calls=tf.data.AUTOTUNE)
    if recipe.mixup > 0:
        train = train.map(mixup, num_parallel_calls=tf.data.AUTOTUNE)
    if len(photos.x_val) == 0:  # --all-photos
        return train.prefetch(tf.data.AUTOTUNE), None
    val = (
        tf.data.Dataset.from_tensor_slices((photos.x_val, photos.y_val))
        .batch(64)
        .map(lambda x, y: (xception_scale(tf.cast(x, tf.float32)), tf.one_hot(y, num_classes)))
    )
    return train.prefetch(tf.data.AUTOTUNE), val.prefetch(tf.data.AUTOTUNE)


def make_batches(recipe: Recipe, photos: Photos) -> tuple[Any, Any | None]:
    """The same batches for the other Keras backends: lab/batches.py, the held-out photos as arrays."""
    from lab.batches import AugmentedBatches, scaled_held_out

    augment = training_augmentation(recipe)
    num_classes = len(photos.labels)
    train = AugmentedBatches(
        photos.x_train, photos.y_train, num_classes, recipe.batch_size, augment, recipe.seed, recipe.mixup
    )
    held_out = scaled_held_out(photos.x_val, photos.y_val, num_classes) if len(photos.x_val) else None
    return train, held_out
