"""Find a TF Lite interpreter: LiteRT first (fastest, numpy 2), then tflite-runtime, then TensorFlow."""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

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
