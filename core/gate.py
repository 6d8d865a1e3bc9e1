"""A second opinion on the photos the distance leaves in doubt: does a network trained on ImageNet see clothing?

The distance (novelty.py) is measured in the classifier's own features, trained to tell ten garments apart and
nothing else. An object photographed on white (a plush toy, a mug, a lamp) can sit as close to the catalogue photos
of garments as a garment does. The original EfficientNet-Lite0, trained on ImageNet's 1,000 classes, tells them
apart: the clothing photos' top answers fall in a few dozen of its classes (jersey, jean, apron, sandal,
...), a cat's or a mug's do not. The gate's score is the log-odds of that set of classes; below the manifest's
threshold the photo is "not_clothing".

It costs one more inference, so it runs only where the distance leaves room for doubt: a ``clothing_distance``
above ``from_distance`` (a photo less typical than most training photos) and not above the distance's own
threshold. It takes the pixels the classifier sampled, so both networks take the same input (measured: a gate at
160 pixels saves 0.2-0.3 of its 2 ms and catches fewer photos; lab/notebook.md). The lab picks the classes and the
threshold from the clothing photos, cross-validated (lab/imagenet_gate.py; docs/verdict.md).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .interpreter import _quantize, invoke, softmax
from .preprocess import Preprocessor

SMALLEST_MASS = 1e-9  # keeps the log-odds finite when the classes get all or none of the probability


@dataclass(frozen=True)
class GateRule:
    """The manifest's ``gate`` block."""

    model_file: str
    sha256: str
    preprocessing: str  # how the gate's input is scaled (preprocess.py's modes), as its training scaled it
    classes: tuple[int, ...]  # ImageNet class ids: the ones clothing photos fall in
    threshold: float  # the classes' log-odds below it: "not_clothing"
    from_distance: float  # the gate runs for a clothing_distance above it, and for every photo without one

    def applies(self, distance: float | None, threshold: float | None) -> bool:
        """Whether the gate is asked: the distance leaves room for doubt (or there is no distance)."""
        if distance is None:
            return True
        return distance > self.from_distance and (threshold is None or distance <= threshold)


class ClothingGate:
    """The ImageNet network behind ``log_odds(pixels)``. A TF Lite interpreter is not thread-safe: each thread
    builds its own over the same file, as the classifier does."""

    def __init__(
        self, path: Path, rule: GateRule, make_interpreter: Callable[[Path], Any], lock: threading.Lock | None = None
    ) -> None:
        """``make_interpreter``: path -> an allocated interpreter; ``lock``: held while another thread's is built
        (the classifier's, so that no two interpreters set up their delegates at once). The first is built here,
        where the classifier's load already holds that lock."""
        self.path = path
        self.rule = rule
        self._make = make_interpreter
        self._local = threading.local()
        self._lock = lock or threading.Lock()
        interpreter = self._local.interpreter = make_interpreter(path)
        inp = interpreter.get_input_details()[0]
        self.input_shape = tuple(int(v) for v in inp["shape"])
        self.outputs = int(np.prod(interpreter.get_output_details()[0]["shape"][1:]))
        self._classes = np.array(rule.classes)
        height, width = self.input_shape[1:3] if len(self.input_shape) == 4 else (1, 1)  # else problem() refuses it
        scaling = Preprocessor(rule.preprocessing, (width, height))
        if np.issubdtype(inp["dtype"], np.integer):
            self._input: Callable[[np.ndarray], np.ndarray] = scaling.lookup(lambda batch: _quantize(batch, inp))
        else:
            self._input = scaling.scale

    def problem(self, input_size: tuple[int, int]) -> str | None:
        """Why this network cannot judge the classifier's pixels of ``input_size`` (height, width), or None."""
        if self.input_shape != (1, *input_size, 3):
            return f"takes input {list(self.input_shape)}, the classifier {[1, *input_size, 3]}: they must match"
        if max(self.rule.classes) >= self.outputs:
            return f"has {self.outputs} outputs, fewer than the classes the manifest names"
        return None

    def _interpreter(self) -> Any:
        interpreter = getattr(self._local, "interpreter", None)
        if interpreter is None:
            with self._lock:
                interpreter = self._local.interpreter = self._make(self.path)
        return interpreter

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """uint8 RGB (height, width, 3), sampled as the classifier's input -> the softmax over ImageNet's classes."""
        return softmax(invoke(self._interpreter(), self._input(pixels))[0])

    def log_odds(self, pixels: np.ndarray) -> float:
        """The log-odds that the photo shows one of the rule's classes."""
        return log_odds(self.probabilities(pixels), self._classes)


def log_odds(probabilities: np.ndarray, classes: Sequence[int] | np.ndarray) -> float:
    """The log-odds of the probability mass of ``classes`` (class ids)."""
    mass = min(max(float(np.asarray(probabilities)[np.asarray(classes)].sum()), SMALLEST_MASS), 1 - SMALLEST_MASS)
    return math.log(mass) - math.log1p(-mass)
