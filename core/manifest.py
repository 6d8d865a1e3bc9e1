"""The model manifest: everything serving needs to know about a ``.tflite`` file, kept next to it.

Swapping the model means swapping the ``.tflite`` and its ``.json``; no code changes.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError
from .gate import GateRule
from .novelty import NoveltyRule
from .preprocess import MODES as KNOWN_PREPROCESSING

OUTPUT_KINDS = ("logits", "probabilities")


@dataclass(frozen=True)
class Manifest:
    path: Path
    name: str
    version: str
    model_file: str
    sha256: str
    labels: tuple[str, ...]
    input_size: tuple[int, int]  # (height, width)
    preprocessing: str
    output: str
    quantization: str
    runtimes: dict[str, bool]  # runtime name -> whether the model was verified to load in it
    # Logits are divided by it before the softmax of "probabilities" (temperature scaling, fitted by
    # lab/calibrate.py); 1.0: none. The default answer, the raw logits, never changes with it.
    temperature: float = 1.0
    # The verdict of a ``details`` answer (novelty.py): the statistics that measure how unlike the training clothing
    # a photo is, and the calibrated top probability below which an answer is "not_sure". Either may be absent (a
    # third-party model): the verdict then uses what there is, and has no ``clothing_distance`` without the first.
    novelty: NoveltyRule | None = None
    not_sure_below: float | None = None
    # A second network asked about the photos the distance leaves in doubt (gate.py); absent: the distance decides.
    gate: GateRule | None = None

    @property
    def model_path(self) -> Path:
        return self.path.parent / self.model_file

    @property
    def statistics_path(self) -> Path | None:
        return None if self.novelty is None else self.path.parent / self.novelty.statistics_file

    @property
    def gate_path(self) -> Path | None:
        return None if self.gate is None else self.path.parent / self.gate.model_file


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest; every problem is a ModelError naming the file and the field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        where = "" if Path(path).is_absolute() else f" (a relative path: looked for in {Path.cwd()})"
        raise ModelError(f"model manifest not found: {path}{where}") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"model manifest {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ModelError(f"model manifest {path} must be a JSON object")

    def need(key: str, kind: type) -> Any:
        if not isinstance(data.get(key), kind):
            raise ModelError(f"model manifest {path}: '{key}' is missing or not a {kind.__name__}")
        return data[key]

    labels = need("labels", list)
    if not labels or not all(isinstance(label, str) and label for label in labels):
        raise ModelError(f"model manifest {path}: 'labels' must be a non-empty list of strings")
    if len(set(labels)) != len(labels):
        raise ModelError(f"model manifest {path}: 'labels' has duplicates")
    size = need("input_size", list)
    if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
        raise ModelError(f"model manifest {path}: 'input_size' must be [height, width]")
    preprocessing = need("preprocessing", str)
    if preprocessing not in KNOWN_PREPROCESSING:
        raise ModelError(
            f"model manifest {path}: unknown preprocessing '{preprocessing}' "
            f"(known: {', '.join(sorted(KNOWN_PREPROCESSING))})"
        )
    output = need("output", str)
    if output not in OUTPUT_KINDS:
        raise ModelError(f"model manifest {path}: 'output' must be one of {', '.join(OUTPUT_KINDS)}")
    temperature = data.get("temperature", 1.0)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < 100:
        raise ModelError(f"model manifest {path}: 'temperature' must be a number between 0 and 100")
    return Manifest(
        path=path,
        name=data.get("name", path.stem),
        version=str(data.get("version", "0")),
        model_file=need("model_file", str),
        sha256=need("sha256", str).lower(),
        labels=tuple(labels),
        input_size=(size[0], size[1]),
        preprocessing=preprocessing,
        output=output,
        quantization=str(data.get("quantization", "none")),
        runtimes=dict(data.get("runtimes", {})),
        temperature=float(temperature),
        novelty=_novelty(data.get("novelty"), path),
        not_sure_below=_not_sure_below(data.get("not_sure_below"), path),
        gate=_gate(data.get("gate"), path),
    )


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _named_file_block(block: Any, where: str, method: str, file_key: str) -> dict[str, Any]:
    """A block that names a file beside the model: an object, of the one method served, with the file and its
    sha256."""
    if not isinstance(block, dict):
        raise ModelError(f"{where} must be an object")
    if block.get("method") != method:
        raise ModelError(f'{where}.method must be "{method}" (the one this service computes)')
    for key in (file_key, "sha256"):
        if not isinstance(block.get(key), str) or not block[key]:
            raise ModelError(f"{where}.{key} is missing or not a string")
    return block


def _novelty(block: Any, path: Path) -> NoveltyRule | None:
    if block is None:
        return None
    where = f"model manifest {path}: 'novelty'"
    block = _named_file_block(block, where, "mahalanobis", "statistics_file")
    threshold: Any = block.get("threshold")
    if not _number(threshold) or not threshold > 0:
        raise ModelError(f"{where}.threshold must be a positive number")
    return NoveltyRule("mahalanobis", block["statistics_file"], block["sha256"].lower(), float(threshold))


def _gate(block: Any, path: Path) -> GateRule | None:
    if block is None:
        return None
    where = f"model manifest {path}: 'gate'"
    block = _named_file_block(block, where, "imagenet-classes", "model_file")
    if block.get("preprocessing") not in KNOWN_PREPROCESSING:
        raise ModelError(f"{where}.preprocessing must be one of {', '.join(sorted(KNOWN_PREPROCESSING))}")
    classes = block.get("classes")
    if not isinstance(classes, list) or not classes or not all(type(c) is int and c >= 0 for c in classes):
        raise ModelError(f"{where}.classes must be a non-empty list of class ids (integers from 0)")
    if len(set(classes)) != len(classes):
        raise ModelError(f"{where}.classes names a class twice")
    for key in ("threshold", "from_distance"):
        if not _number(block.get(key)) or not math.isfinite(block[key]):
            raise ModelError(f"{where}.{key} must be a number")
    return GateRule(
        block["model_file"],
        block["sha256"].lower(),
        block["preprocessing"],
        tuple(classes),
        float(block["threshold"]),
        float(block["from_distance"]),
    )


def _not_sure_below(value: Any, path: Path) -> float | None:
    if value is None:
        return None
    if not _number(value) or not 0 <= value <= 1:
        raise ModelError(f"model manifest {path}: 'not_sure_below' must be a probability between 0 and 1")
    return float(value)


def write_manifest(path: str | Path, **fields: Any) -> Path:
    path = Path(path)
    path.write_text(json.dumps(fields, indent=2) + "\n")
    return path
