"""The model manifest: everything serving needs to know about a ``.tflite`` file, kept next to it.

Swapping the model means swapping the ``.tflite`` and its ``.json``; no code changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError
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

    @property
    def model_path(self) -> Path:
        return self.path.parent / self.model_file


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
    )


def write_manifest(path: str | Path, **fields: Any) -> Path:
    path = Path(path)
    path.write_text(json.dumps(fields, indent=2) + "\n")
    return path
