"""Whether a converted model may be served: Keras and TF Lite classify the same images, a float32 model must match
within the tolerance and a quantized one agree on the top label; optionally, the book's tflite-runtime 2.14 loads
and runs it too."""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lab.source_model import SourceModel

LEGACY_CHECK = Path(__file__).resolve().parent / "legacy_check.py"


def run_tflite(model_bytes: bytes, batches: Sequence[np.ndarray]) -> np.ndarray:
    """TF Lite outputs for each batch, (de)quantized exactly as serving does."""
    from core.interpreter import find_runtime
    from core.model import run_interpreter

    _, Interpreter = find_runtime()
    interpreter = Interpreter(model_content=model_bytes)
    interpreter.allocate_tensors()
    return np.stack([run_interpreter(interpreter, batch) for batch in batches])


def parity(source: SourceModel, model_bytes: bytes, batches: Sequence[np.ndarray]) -> dict[str, Any]:
    expected = np.stack([source.predict(b).reshape(-1) for b in batches])
    actual = run_tflite(model_bytes, batches)
    max_abs = float(np.max(np.abs(expected - actual)))
    scale = float(max(1.0, np.max(np.abs(expected))))
    return {
        "images": len(batches),
        "max_abs_diff": max_abs,
        "relative_diff": max_abs / scale,
        "top1_agreement": float(np.mean(expected.argmax(1) == actual.argmax(1))),
        "expected": expected,
        "actual": actual,
    }


def parity_failure(args: argparse.Namespace, result: dict[str, Any]) -> str | None:
    """Why the converted model must not be served, or None: float32 must match Keras within the tolerance; a
    quantized model must give Keras' top label on at least --min-agreement of the images."""
    if args.quantize == "none" and result["relative_diff"] > args.tolerance:
        return (
            f"float32 TF Lite differs from Keras by {result['relative_diff']:.3g} (relative), more than the "
            f"tolerance {args.tolerance:g}"
        )
    if args.quantize != "none" and result["top1_agreement"] < args.min_agreement:
        return (
            f"the {args.quantize} model gives Keras' top label on only {result['top1_agreement']:.1%} of "
            f"{result['images']} images (--min-agreement {args.min_agreement:.0%})"
        )
    return None


def detect_output_kind(outputs: np.ndarray) -> str:
    sums_to_one = np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3)
    return "probabilities" if sums_to_one and outputs.min() >= 0 else "logits"


def legacy_runtime_ok(
    python: Path, model_path: Path, batches: Sequence[np.ndarray], reference: np.ndarray
) -> tuple[bool, str]:
    """Whether tflite-runtime 2.14 (in another Python) loads and runs the model; its agreement with ``reference``
    (this runtime's outputs for the same inputs) is reported."""
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "inputs.npy", np.concatenate(batches))
        proc = subprocess.run(
            [
                str(python),
                str(LEGACY_CHECK),
                str(model_path),
                str(Path(tmp) / "inputs.npy"),
                str(Path(tmp) / "outputs.npy"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            return False, (proc.stderr.strip().splitlines() or ["failed"])[-1]
        got = np.load(Path(tmp) / "outputs.npy")
    agree = float(np.mean(got.argmax(1) == reference.argmax(1)))
    diff = float(np.max(np.abs(got - reference)))
    return True, f"top-1 agreement with {_runtime_name()} {agree:.3f}, max abs diff {diff:.3g}"


def _runtime_name() -> str:
    from core.interpreter import find_runtime

    return find_runtime()[0]
