"""Models and photos the benchmarks share, generated once into bench/results/tmp (not committed)."""

from __future__ import annotations

import subprocess

from bench.common import DATA, ROOT, VENV_PY, WORK

DEFAULT_INT8 = ROOT / "model" / "clothing-model.json"


QUICK = ("--representative-count", "50", "--parity-count", "8")  # enough for speed-only models


def _convert(source, out, quantize: str, *options) -> None:
    """``python -m lab.convert`` with ``options`` (``quantize``: float32 or one of its modes), unless done already."""
    manifest = out.with_suffix(".json")
    if manifest.exists() and manifest.stat().st_mtime > source.stat().st_mtime:
        return  # converted from this very source already
    subprocess.run(
        [
            str(VENV_PY),
            "-m",
            "lab.convert",
            str(source),
            "--out",
            str(out),
            "--quantize",
            "none" if quantize == "float32" else quantize,
            "--representative-dir",
            str(DATA / "train"),
            *options,
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=1800,
    )


def default_float32():
    out = WORK / "default-float32.tflite"
    _convert(ROOT / "model" / "clothing-model.keras", out, "float32", *QUICK)
    return out.with_suffix(".json")


def xception(quantize: str):
    """The book's model shape: Xception, weights=None, 10 classes, 299x299 (random weights: speed only).

    ``quantize``: float32, dynamic or int8 (full integer, calibrated on 50 training photos).
    """
    source = WORK / "xception-299.keras"
    if not source.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                str(VENV_PY),
                "-c",
                "import keras; keras.applications.Xception(weights=None, classes=10, "
                f"input_shape=(299, 299, 3)).save('{source}')",
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
    out = WORK / f"xception-299-{quantize}.tflite"
    _convert(source, out, quantize, *QUICK)
    return out.with_suffix(".json")


# Written by ``bench/xception_train.py restore`` after training on a GPU machine; not committed (84 MB).
TRAINED_XCEPTION = WORK / "xception-trained.keras"


def trained_xception(quantize: str):
    """The trained Xception (see bench/xception_train.py) converted as convert.py does by default
    (200 calibration photos for int8), or None when it has not been trained here."""
    if not TRAINED_XCEPTION.exists():
        return None
    out = WORK / f"xception-trained-{quantize}.tflite"
    _convert(TRAINED_XCEPTION, out, quantize, "--name", "xception-trained", "--parity-dir", str(DATA / "validation"))
    return out.with_suffix(".json")


def input_size(manifest) -> int:
    from core.manifest import load_manifest

    return load_manifest(manifest).input_size[0]


def photos() -> dict:
    """The book-like photo (a dataset photo of pants, 400x534 = 0.2 MP) and a 0.85 MP version of it."""
    from PIL import Image

    WORK.mkdir(parents=True, exist_ok=True)
    source = sorted((DATA / "validation" / "pants").glob("*.jpg"))[0]
    small = WORK / "pants-0.2mp.jpg"
    large = WORK / "pants-0.85mp.jpg"
    if not small.exists():
        small.write_bytes(source.read_bytes())
    if not large.exists():
        with Image.open(source) as img:
            img.convert("RGB").resize((800, 1067), Image.Resampling.BICUBIC).save(large, quality=90)
    return {"0.2MP": small, "0.85MP": large}
