"""Keras to TF Lite bytes in each ``--quantize`` mode: the images an int8 model is calibrated on, the converter's
settings, and the int8 rewrites for XNNPACK (lab/activation_fusion.py, lab/pool_folding.py)."""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

import numpy as np

from lab.activation_fusion import fuse_activations_into_adds
from lab.pool_folding import fold_average_pools
from lab.source_model import ConversionError, SourceModel, first_line

QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")


def say(message: str) -> None:
    """A progress line, flushed at once so that a log shows it as it happens."""
    print(message, flush=True)


def image_batches(
    folder: Path | None, count: int, size: tuple[int, int], preprocessing: str, seed: int
) -> list[np.ndarray]:
    """Up to ``count`` preprocessed images (1, H, W, 3) from ``folder`` (recursive), spread over it."""
    from keras_image_helper import create_preprocessor
    from PIL import Image

    from core.images import IMAGE_SUFFIXES, upright

    if folder is None:
        return []
    if not folder.is_dir():
        raise ConversionError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConversionError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    rng = np.random.default_rng(seed)
    chosen = [files[i] for i in sorted(rng.permutation(len(files))[:count])]
    preprocessor = create_preprocessor(preprocessing, target_size=(size[1], size[0]))
    batches = []
    for path in chosen:  # turned upright as serving turns them (core/images.py)
        with Image.open(path) as img:
            batches.append(preprocessor.convert_to_tensor(upright(img)).astype("float32"))
    return batches


def random_batches(count: int, size: tuple[int, int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (1, size[0], size[1], 3)).astype("float32") for _ in range(count)]


def convert(source: SourceModel, mode: str, representative: list[np.ndarray]) -> bytes:
    import tensorflow as tf

    with contextlib.redirect_stdout(io.StringIO()):  # Keras' export prints its whole signature
        converter = source.converter()
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "int8":
        if not representative:
            raise ConversionError("--quantize int8 needs --representative-dir: a folder of typical images")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([batch] for batch in representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return converter.convert()
    except Exception as exc:  # the converter raises many types; its first line names the op
        raise ConversionError(
            f"TF Lite cannot convert this model: {first_line(exc)} "
            "(an op without a TF Lite builtin needs a different layer)"
        ) from None


def convert_for_serving(source: SourceModel, mode: str, representative: list[np.ndarray]) -> bytes:
    """The TF Lite model; an int8 one with the ops XNNPACK runs only in float rewritten into ones it runs."""
    started = time.perf_counter()
    say(f"converting (quantize={mode}) ...")
    model_bytes = convert(source, mode, representative)
    say(f"  {len(model_bytes) / 1e6:.2f} MB in {time.perf_counter() - started:.1f}s")
    if mode == "int8":
        model_bytes, fused = fuse_activations_into_adds(model_bytes)
        model_bytes, folded = fold_average_pools(model_bytes)
        if fused or folded:
            say(
                f"  for XNNPACK: fused {fused} standalone ReLU(s) into their ADDs, folded {folded} average "
                "pool(s) into their 1x1 convolutions"
            )
    return model_bytes
