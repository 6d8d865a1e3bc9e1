"""The training augmentations, shared by the default model (model/train.py) and the Xception trained for the
quantization benchmark (bench/xception_train.py). Keras only: nothing else need be installed to import it."""


def augmentation(keras, seed: int, rotation: float = 0.05, zoom: float = 0.2, shift: float = 0.1, dtype=None):
    """Flip, rotate, zoom, translate, contrast, brightness, on raw pixels (0-255); ``dtype`` None: the policy's."""
    layers = keras.layers
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed, dtype=dtype),
            layers.RandomRotation(rotation, fill_mode="reflect", seed=seed + 1, dtype=dtype),
            layers.RandomZoom((-zoom, zoom), fill_mode="reflect", seed=seed + 2, dtype=dtype),
            layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=seed + 3, dtype=dtype),
            layers.RandomContrast(0.2, seed=seed + 4, dtype=dtype),
            layers.RandomBrightness(0.15, value_range=(0, 255), seed=seed + 5, dtype=dtype),
        ],
        name="augment",
    )
