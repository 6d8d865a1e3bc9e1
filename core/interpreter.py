"""Find a TF Lite interpreter (LiteRT first: fastest, numpy 2; then tflite-runtime, then TensorFlow) and run one:
the classifier (model.py) and the ImageNet gate (gate.py) both go through ``invoke``."""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

import numpy as np

from .errors import ModelError

# (runtime name, module holding Interpreter), in order of preference.
CANDIDATES = (
    ("ai_edge_litert", "ai_edge_litert.interpreter"),
    ("tflite_runtime", "tflite_runtime.interpreter"),
    ("tensorflow", "tensorflow.lite"),
)


@lru_cache(maxsize=1)
def find_runtime() -> tuple[str, Any]:
    """(name, Interpreter class) of the first runtime that imports."""
    for name, module in CANDIDATES:
        try:
            return name, importlib.import_module(module).Interpreter
        except ImportError:
            continue
    raise ModelError("no TF Lite runtime installed: pip install ai-edge-litert (or tflite-runtime, or tensorflow)")


def run_interpreter(interpreter: Any, batch: np.ndarray) -> np.ndarray:
    """One float batch through a TF Lite interpreter (any runtime) -> float32 scores (its first output)."""
    return invoke(interpreter, batch)[0]


def invoke(interpreter: Any, batch: np.ndarray) -> list[np.ndarray]:
    """One float batch through a TF Lite interpreter -> each output as float32, flattened.

    The one place inputs are quantized and outputs dequantized, so that convert.py's parity checks, the lab's
    measurements and the tflite-runtime check measure exactly what serving computes."""
    inp = interpreter.get_input_details()[0]
    interpreter.set_tensor(inp["index"], _quantize(batch, inp))
    interpreter.invoke()
    return [
        _dequantize(interpreter.get_tensor(out["index"]), out).reshape(-1) for out in interpreter.get_output_details()
    ]


def _quantize(batch: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    dtype = detail["dtype"]
    if batch.dtype == dtype:  # float for a float model; quantized already by Classifier.model_input
        return batch
    if np.issubdtype(dtype, np.integer):
        scale, zero_point = detail["quantization"]
        info = np.iinfo(dtype)
        batch = np.clip(np.round(batch / scale + zero_point), info.min, info.max)
    return batch.astype(dtype, copy=False)


def _dequantize(values: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    if np.issubdtype(values.dtype, np.integer):
        scale, zero_point = detail["quantization"]
        return (values.astype(np.float32) - zero_point) * scale
    return values.astype(np.float32, copy=False)


def softmax(x: np.ndarray) -> np.ndarray:
    """Over the last axis: one image's scores, or a batch's (the classifier's calibrated probabilities, the gate's,
    and lab/calibrate.py's temperature fit)."""
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
