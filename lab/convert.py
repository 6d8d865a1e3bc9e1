"""Convert a Keras model to TF Lite, check it against Keras, and write its manifest.

    python -m lab.convert xception_v4_large_08_0.894.h5 --out model/clothing-model.tflite \
        --preprocessing xception --quantize none --parity-dir ../shared/data/clothing-dataset-small/validation

Input: a legacy ``.h5`` (as the book saved it), a ``.keras`` file, or a SavedModel folder.
``--quantize``: ``none`` (float32), ``float16``, ``dynamic`` (int8 weights, float activations) or ``int8``
(full-integer, int8 input/output, calibrated on ``--representative-dir`` images; then the ops XNNPACK runs only
in float are rewritten into ones it runs in int8: lab/activation_fusion.py, lab/pool_folding.py).

After converting, Keras and TF Lite classify the same images (``--parity-dir``, else the representative
images, else random inputs) and a table shows the max absolute difference and top-1 agreement. A
``none`` conversion must agree within ``--tolerance`` (default 1e-4, relative to the largest output
magnitude), a quantized one must give Keras' top label on ``--min-agreement`` of the images (default 90%),
or the command exits 2 and leaves ``--out`` as it was; a problem with its input (a missing file, a model it
cannot load) is one line and exit 1. Only a model that passed is moved into place, with its manifest (labels,
input size, preprocessing, output kind, sha256, runtimes it loads in) beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lab.conversion import QUANTIZE_MODES, convert_for_serving, image_batches, random_batches, say
from lab.labels import CLOTHING_LABELS
from lab.parity import detect_output_kind, legacy_runtime_ok, parity, parity_failure
from lab.source_model import ConversionError, SourceModel

DEFAULT_TOLERANCE = 1e-4
DEFAULT_MIN_AGREEMENT = 0.9


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m lab.convert", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("source", type=Path, help="Keras model: .h5, .keras, or a SavedModel folder")
    p.add_argument("--out", type=Path, help="output .tflite (default: next to the source)")
    p.add_argument("--quantize", choices=QUANTIZE_MODES, default="none")
    p.add_argument(
        "--labels", help="comma-separated labels, or a file with one per line (default: the book's ten clothing labels)"
    )
    p.add_argument("--preprocessing", default="xception", help="keras_image_helper mode the model expects")
    p.add_argument(
        "--output-kind",
        choices=("auto", "logits", "probabilities"),
        default="auto",
        help="what the model outputs (auto: probabilities if outputs sum to 1)",
    )
    p.add_argument("--representative-dir", type=Path, help="image folder for int8 calibration")
    p.add_argument("--representative-count", type=int, default=200)
    p.add_argument("--parity-dir", type=Path, help="image folder for the Keras/TF Lite parity check")
    p.add_argument("--parity-count", type=int, default=64)
    p.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="float32: largest relative difference from Keras allowed",
    )
    p.add_argument(
        "--min-agreement",
        type=float,
        default=DEFAULT_MIN_AGREEMENT,
        help="quantized modes: least share of parity images whose top label matches Keras",
    )
    p.add_argument("--name", help="model name in the manifest (default: the output file's stem)")
    p.add_argument("--version", default="1.0.0", help="model version in the manifest")
    p.add_argument(
        "--legacy-python",
        type=Path,
        help="a Python with tflite-runtime 2.14 installed: check the model loads there too",
    )
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def read_labels(value: str | None) -> list[str]:
    if not value:
        return list(CLOTHING_LABELS)
    path = Path(value)
    if path.is_file():
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [label.strip() for label in value.split(",") if label.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        return run(args)
    except ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    out = args.out or args.source.with_suffix(".tflite")
    if out.suffix != ".tflite":
        raise ConversionError(f"--out must end in .tflite (got {out})")
    say(f"loading {args.source} ...")
    source = SourceModel(args.source)
    labels = read_labels(args.labels)
    say(f"  input {source.input_size[0]}x{source.input_size[1]}x3, {len(labels)} labels")
    representative, check_images = sample_images(args, source.input_size)

    model_bytes = convert_for_serving(source, args.quantize, representative)
    result = parity(source, model_bytes, check_images)
    outputs, tflite_outputs = result.pop("expected"), result.pop("actual")
    if outputs.shape[1] != len(labels):
        raise ConversionError(
            f"the model outputs {outputs.shape[1]} scores but {len(labels)} labels were given (--labels)"
        )
    say("parity, Keras vs TF Lite:")
    say(f"  {'images':>8} {'max abs diff':>14} {'relative':>10} {'top-1 agree':>12}")
    say(
        f"  {result['images']:>8} {result['max_abs_diff']:>14.3g} {result['relative_diff']:>10.3g} "
        f"{result['top1_agreement']:>12.3f}"
    )
    failure = parity_failure(args, result)
    if failure:  # the served model is left as it was
        print(f"error: {failure}; {out} was not written", file=sys.stderr)
        return 2
    manifest = {
        "name": args.name or out.stem,
        "version": args.version,
        "model_file": out.name,
        "labels": labels,
        "input_size": list(source.input_size),
        "preprocessing": args.preprocessing,
        "output": detect_output_kind(outputs) if args.output_kind == "auto" else args.output_kind,
        "quantization": args.quantize,
        "parity": {k: round(v, 8) for k, v in result.items()},
    }
    install(out, model_bytes, manifest, args.legacy_python, check_images, tflite_outputs)
    say(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


def sample_images(args: argparse.Namespace, size: tuple[int, int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The calibration images (int8) and the parity images (else the calibration ones, else random inputs)."""
    representative = image_batches(
        args.representative_dir, args.representative_count, size, args.preprocessing, args.seed
    )
    check_images = (
        image_batches(args.parity_dir, args.parity_count, size, args.preprocessing, args.seed)
        or representative[: args.parity_count]
    )
    if not check_images:
        say("  no --parity-dir given: checking parity on random inputs")
        check_images = random_batches(min(args.parity_count, 8), size, args.seed)
    return representative, check_images


def install(
    out: Path,
    model_bytes: bytes,
    manifest: dict[str, Any],
    legacy_python: Path | None,
    check_images: Sequence[np.ndarray],
    tflite_outputs: np.ndarray,
) -> None:
    """Stage the model and its manifest beside ``out``, check the book's runtime, then move both into place."""
    from core.manifest import sha256_of, write_manifest

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".convert-") as tmp:
        staged = Path(tmp) / out.name
        staged.write_bytes(model_bytes)
        runtimes = {"ai_edge_litert": True, "tensorflow": True}
        if legacy_python:
            ok, detail = legacy_runtime_ok(legacy_python, staged, check_images, tflite_outputs)
            runtimes["tflite_runtime"] = ok
            say(f"tflite-runtime 2.14: {'loads and runs' if ok else 'NOT compatible'} ({detail})")
        write_manifest(staged.with_suffix(".json"), **manifest, sha256=sha256_of(staged), runtimes=runtimes)
        # Every check passed: move the pair into place (the model first; a manifest names its model's hash).
        os.replace(staged, out)
        os.replace(staged.with_suffix(".json"), out.with_suffix(".json"))


if __name__ == "__main__":
    sys.exit(main())
