"""The classifier, in KServe's lifecycle: load, preprocess, predict, postprocess; ``classify`` runs them for one
image's bytes, decoding it within the instance's memory budget first.

Loading is lazy (importing this module is cheap) and happens once per process. A TF Lite interpreter
is not thread-safe, so each thread gets its own interpreter over the same model file.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from .errors import ModelError
from .gate import ClothingGate
from .images import load_pixels, open_image
from .interpreter import _quantize, find_runtime, invoke, run_interpreter, softmax
from .manifest import Manifest, load_manifest, sha256_of
from .memory import PixelBudget, release_freed_memory
from .novelty import ClothingDistance, verdict
from .preprocess import Preprocessor
from .trace import Trace

TRIM_AFTER_PIXELS = 4_000_000  # decodes this large hand their memory back to the system when done


# A JPEG decoded at reduced DCT scale keeps at least the model's input on each side and is then sampled as Keras
# samples every image (nearest neighbour): each decoded pixel already averages a block of 4 to 64 of the photo's.
# Held-back photos enlarged to 3 and 12 MP get as many answers right this way as from a full decode
# (docs/performance.md, "Phone photos").


class DecodeRules(NamedTuple):
    """How an image may be decoded (images.py): its pixel limit, and the reduced JPEG decode for big photos."""

    max_pixels: int
    draft_size: tuple[int, int] | None = None  # (width, height): a JPEG is never decoded below it
    draft_above_pixels: int | None = None  # None: every JPEG at reduced scale (JPEG_DRAFT=1)

    @classmethod
    def for_input(
        cls, input_size: tuple[int, int], max_pixels: int, exact_max_pixels: int | None, exact: bool = False
    ) -> DecodeRules:
        """Rules for a model of ``input_size`` (height, width): JPEGs over ``exact_max_pixels`` (every one when it
        is None) decoded at reduced scale, none when ``exact``."""
        height, width = input_size
        draft = None if exact else (width, height)
        return cls(max_pixels, draft, exact_max_pixels)


class Judgement(NamedTuple):
    """What ``details`` adds to the scores: the top label, how sure the model is, and whether the photo looks like
    the clothing it was trained on (novelty.py)."""

    label: str
    confidence: float  # the calibrated top probability
    verdict: str | None  # novelty.VERDICTS, or None for a model whose manifest has no rule for it
    distance: float | None  # clothing_distance; None without the statistics
    threshold: float | None
    gate_log_odds: float | None = None  # the ImageNet gate's score, where it was asked (gate.py)


class Classifier:
    def __init__(self, manifest_path: str | Path, threads: int = 1) -> None:
        self.manifest_path = manifest_path
        self.threads = threads
        self.manifest: Manifest | None = None
        self.runtime: str | None = None
        self._interpreter_class: Any = None
        self._preprocessor: Preprocessor | None = None
        self._quantized_input: Callable[[np.ndarray], np.ndarray] | None = None  # integer models: preprocess.lookup
        self._distance: ClothingDistance | None = None
        self._gate: ClothingGate | None = None
        self._local = threading.local()
        self._load_lock = threading.Lock()

    # -- load ---------------------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return self.manifest is not None

    def load(self) -> Classifier:
        """Read the manifest, check it against the model file, and build the first interpreter."""
        if self.ready:  # the manifest is set last: once it is, everything else is in place
            return self
        with self._load_lock:
            if self.ready:
                return self
            manifest = load_manifest(self.manifest_path)
            if not manifest.model_path.is_file():
                raise ModelError(f"model file not found: {manifest.model_path} (named by {manifest.path})")
            digest = sha256_of(manifest.model_path)
            if digest != manifest.sha256:
                raise ModelError(
                    f"sha256 of {manifest.model_path} is {digest}, but {manifest.path} says "
                    f"{manifest.sha256}: the model and its manifest do not belong together"
                )
            self.runtime, self._interpreter_class = find_runtime()
            if manifest.runtimes.get(self.runtime) is False:
                raise ModelError(
                    f"{manifest.model_path.name} does not load in {self.runtime}: its converter emitted "
                    f"operator versions this runtime lacks. Install ai-edge-litert (pip install ai-edge-litert)"
                )
            self._distance = _load_statistics(manifest)
            interpreter = self._new_interpreter(manifest)
            self._check_signature(manifest, interpreter, self._distance)
            self._local.interpreter = interpreter
            height, width = manifest.input_size
            self._preprocessor = Preprocessor(manifest.preprocessing, target_size=(width, height))
            inp = interpreter.get_input_details()[0]
            if np.issubdtype(inp["dtype"], np.integer):
                self._quantized_input = self._preprocessor.lookup(lambda batch: _quantize(batch, inp))
            self._gate = self._load_gate(manifest)
            self.manifest = manifest
        return self

    def warm(self) -> Classifier:
        """Load, and run one inference on a small blank JPEG: the decoders' imports (Pillow's file plugins,
        libjpeg-turbo's module), the interpreter's buffers and XNNPACK's packed weights are then ready before the
        first request, in the init phase that SnapStart snapshots (this thread; others build their own on first use)."""
        manifest = self.load().loaded_manifest()
        height, width = manifest.input_size
        blank = io.BytesIO()
        Image.new("RGB", (width, height)).save(blank, "JPEG")
        self.judge(*self.infer(self.prepare(blank.getvalue(), DecodeRules(max_pixels=width * height))))
        if self._gate is not None:
            self._gate.log_odds(np.zeros((height, width, 3), np.uint8))
        return self

    def _new_interpreter(self, manifest: Manifest, path: Path | None = None) -> Any:
        path = path or manifest.model_path
        try:
            interpreter = self._interpreter_class(model_path=str(path), num_threads=self.threads)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(
                f"{self.runtime} cannot load {path}: {exc}. If the model needs a newer runtime, install ai-edge-litert"
            ) from None
        return interpreter

    def _load_gate(self, manifest: Manifest) -> ClothingGate | None:
        """The ImageNet gate the manifest names, checked against its sha256 and the classifier's input."""
        path = manifest.gate_path
        if manifest.gate is None or path is None:
            return None
        _check_named_file(path, manifest.gate.sha256, manifest, "gate model", "'gate': they do not belong together")
        if manifest.novelty is not None and manifest.gate.from_distance >= manifest.novelty.threshold:
            raise ModelError(
                f"{manifest.path}: the gate's from_distance is not below the novelty threshold: it would never be asked"
            )
        gate = ClothingGate(path, manifest.gate, lambda p: self._new_interpreter(manifest, p), self._load_lock)
        problem = gate.problem(manifest.input_size)
        if problem:
            raise ModelError(f"the gate {path} {problem}")
        return gate

    @staticmethod
    def _check_signature(manifest: Manifest, interpreter: Any, distance: ClothingDistance | None) -> None:
        inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
        # The scores are the first output. Any after them are activations for the novelty statistics, read only when
        # the manifest names statistics (a manifest without them serves the same file, its scores alone).
        if len(inputs) != 1 or not outputs:
            raise ModelError(
                f"{manifest.model_path} has {len(inputs)} inputs and {len(outputs)} outputs; an image classifier "
                "needs one input, and its scores as its first output"
            )
        channels = [int(out["shape"][-1]) for out in outputs[1:]]
        if distance is not None and channels != distance.lengths:
            raise ModelError(
                f"{manifest.model_path}'s outputs after the scores have {channels} channels, but "
                f"{manifest.statistics_path} measures {distance.lengths}"
            )
        shape = tuple(int(v) for v in inputs[0]["shape"])
        if len(shape) != 4 or shape[1:3] != manifest.input_size or shape[3] != 3:
            raise ModelError(
                f"{manifest.model_path} takes input {list(shape)}, but {manifest.path} says "
                f"input_size {list(manifest.input_size)} with 3 channels"
            )
        classes = int(np.prod(outputs[0]["shape"][1:]))
        if classes != len(manifest.labels):
            raise ModelError(
                f"{manifest.model_path} outputs {classes} scores, but {manifest.path} lists "
                f"{len(manifest.labels)} labels"
            )

    def loaded_manifest(self) -> Manifest:
        """The manifest, loading the model first if it is not loaded yet."""
        if self.manifest is None:
            self.load()
        assert self.manifest is not None
        return self.manifest

    def _interpreter(self) -> Any:
        interpreter = getattr(self._local, "interpreter", None)
        if interpreter is None:
            with self._load_lock:  # building interpreters one at a time keeps delegate set-up race-free
                interpreter = self._local.interpreter = self._new_interpreter(self.loaded_manifest())
        return interpreter

    # -- one image: decode within the budget, then the lifecycle ---------------------------------------------------
    def classify(
        self,
        data: bytes | bytearray,
        top_k: int | None,
        probabilities: bool,
        rules: DecodeRules,
        budget: PixelBudget,
        trace: Trace,
        details: bool = False,
    ) -> dict[str, Any]:
        """An image file's bytes -> {label: score}, or with ``details`` the answer with its verdict (``describe``).
        The decoded pixels exist only while they hold their share of ``budget`` (memory.py); a big decode hands its
        freed memory back to the system."""
        trace.image_bytes += len(data)
        t = time.perf_counter()
        opened = open_image(data, rules.max_pixels, rules.draft_size, rules.draft_above_pixels)
        pixels = opened.holds
        trace.image_size = list(opened.size)  # as decoded
        with budget.hold(pixels):
            image = load_pixels(opened)
            del opened
            t = trace.lap("decode", t)
            sampled = self.sample(image)
            del image
            batch = self.model_input(sampled)
        if pixels >= TRIM_AFTER_PIXELS:
            release_freed_memory()
        t = trace.lap("preprocess", t)
        scores, features = self.infer(batch)
        t = trace.lap("inference", t)
        # The gate's inference (~2 ms) is paid only by the answers that show its verdict: a flat answer's log line
        # and metrics carry the distance's.
        judgement = self.judge(scores, features, sampled if details else None)
        trace.judged(judgement.verdict, judgement.distance)
        trace.lap("verdict", t)
        if details:
            return self.describe(scores, judgement, top_k, probabilities)
        return self.postprocess(scores, top_k, probabilities)

    # -- preprocess ---------------------------------------------------------------------------------
    def preprocess(self, image: Image.Image | np.ndarray) -> np.ndarray:
        """A PIL image, or JPEG pixels as ``images.load_pixels`` gives them -> the float32 batch (1, H, W, 3)
        keras_image_helper makes for it (preprocess.py)."""
        self.loaded_manifest()  # the preprocessor is made with the model, from its manifest
        assert self._preprocessor is not None
        return self._preprocessor(image)

    def sample(self, image: Image.Image | np.ndarray) -> np.ndarray:
        """uint8 RGB pixels at the input size (preprocess.py), before the mode's scaling: what the gate takes too."""
        self.loaded_manifest()
        assert self._preprocessor is not None
        return self._preprocessor.resize(image)

    def model_input(self, pixels: np.ndarray) -> np.ndarray:
        """``sample``'s pixels -> the batch the interpreter takes: ``preprocess``' for a float model; for an integer
        one, the very values quantizing it gives, looked up from the pixels (preprocess.py), which skips two float
        arrays."""
        self.loaded_manifest()
        assert self._preprocessor is not None
        if self._quantized_input is None:
            return self._preprocessor.scale(pixels)
        return self._quantized_input(pixels)

    def sample_file(self, data: bytes | bytearray, rules: DecodeRules) -> np.ndarray:
        """An image file's bytes -> ``sample``'s pixels, decoded as ``classify`` decodes them (without its budget)."""
        opened = open_image(data, rules.max_pixels, rules.draft_size, rules.draft_above_pixels)
        return self.sample(load_pixels(opened))

    def prepare(self, data: bytes | bytearray, rules: DecodeRules) -> np.ndarray:
        """An image file's bytes -> the float batch ``preprocess`` makes, decoded as ``classify`` does (the lab's
        measurements use it; ``classify`` also holds the decode budget and times each step)."""
        self.loaded_manifest()
        assert self._preprocessor is not None
        return self._preprocessor.scale(self.sample_file(data, rules))

    # -- predict ------------------------------------------------------------------------------------
    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Float batch (1, H, W, 3) -> float32 scores (num_labels,), (de)quantizing where the model is integer."""
        return run_interpreter(self._interpreter(), batch)

    def infer(self, batch: np.ndarray) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """The scores, and the layers' activations where the manifest has statistics to measure them with."""
        outputs = invoke(self._interpreter(), batch)
        return outputs[0], outputs[1:] if self._distance is not None else None

    # -- postprocess --------------------------------------------------------------------------------
    def postprocess(
        self, scores: np.ndarray, top_k: int | None = None, probabilities: bool = False
    ) -> dict[str, float]:
        """Scores -> {label: score}: every label in manifest order, or the top_k best, highest first."""
        manifest = self.loaded_manifest()
        if probabilities and manifest.output == "logits":
            scores = softmax(scores / manifest.temperature)
        labels = manifest.labels
        if top_k is None:
            return {label: float(score) for label, score in zip(labels, scores, strict=False)}
        order = np.argsort(-scores, kind="stable")[:top_k]
        return {labels[i]: float(scores[i]) for i in order}

    def judge(
        self, scores: np.ndarray, features: list[np.ndarray] | None, pixels: np.ndarray | None = None
    ) -> Judgement:
        """The top label, its calibrated probability, and the verdict by the manifest's rules (novelty.py), the
        ImageNet gate asked where they apply and the sampled ``pixels`` are given (gate.py)."""
        manifest = self.loaded_manifest()
        probabilities = softmax(scores / manifest.temperature) if manifest.output == "logits" else scores
        top = int(np.argmax(probabilities))
        confidence = float(probabilities[top])
        distance = None if features is None or self._distance is None else self._distance(features)
        threshold = manifest.novelty.threshold if manifest.novelty is not None and distance is not None else None
        odds = gate_says_not = None
        if self._gate is not None and pixels is not None and self._gate.rule.applies(distance, threshold):
            odds = self._gate.log_odds(pixels)
            gate_says_not = odds < self._gate.rule.threshold
        return Judgement(
            manifest.labels[top],
            confidence,
            verdict(distance, threshold, confidence, manifest.not_sure_below, gate_says_not),
            distance,
            threshold,
            odds,
        )

    def describe(
        self, scores: np.ndarray, judgement: Judgement, top_k: int | None = None, probabilities: bool = False
    ) -> dict[str, Any]:
        """The ``details`` answer: the flat scores under "scores", then the judgement; a key whose value the model
        cannot give (no statistics: no distance) is left out rather than null."""
        manifest = self.loaded_manifest()
        answer: dict[str, Any] = {
            "scores": self.postprocess(scores, top_k, probabilities),
            "label": judgement.label,
            "confidence": round(judgement.confidence, 6),
        }
        if judgement.verdict is not None:
            answer["verdict"] = judgement.verdict
        if judgement.distance is not None:
            answer["clothing_distance"] = round(judgement.distance, 4)
            answer["threshold"] = judgement.threshold
        if judgement.gate_log_odds is not None and manifest.gate is not None:
            answer["imagenet_gate"] = {
                "clothing_log_odds": round(judgement.gate_log_odds, 4),
                "threshold": manifest.gate.threshold,
            }
        answer["model"] = {"name": manifest.name, "version": manifest.version}
        return answer


def _check_named_file(path: Path, sha256: str, manifest: Manifest, what: str, mismatch: str) -> None:
    """A file the manifest names beside the model is there, and is the one it describes."""
    if not path.is_file():
        raise ModelError(f"{what} not found: {path} (named by {manifest.path})")
    if sha256_of(path) != sha256:
        raise ModelError(f"sha256 of {path} differs from {manifest.path}'s{mismatch}")


def _load_statistics(manifest: Manifest) -> ClothingDistance | None:
    """The novelty statistics the manifest names, checked against its sha256; None when it names none."""
    path = manifest.statistics_path
    if manifest.novelty is None or path is None:
        return None
    _check_named_file(
        path, manifest.novelty.sha256, manifest, "novelty statistics", ": the statistics belong to another model"
    )
    try:
        return ClothingDistance.load(path)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{path} is not novelty statistics: {exc}") from None
