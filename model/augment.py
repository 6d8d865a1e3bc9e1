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
    smaller in the frame), ``randaugment`` applies that many RandAugment operations, ``erasing`` blanks a random
    patch with that probability."""
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
