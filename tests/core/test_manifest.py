"""The committed manifest matches the committed model; broken manifests fail at load, clearly."""

import json
import shutil

import numpy as np
import pytest

from core.errors import ModelError
from core.manifest import load_manifest, sha256_of
from core.model import Classifier
from core.runtime import find_runtime
from model.labels import CLOTHING_LABELS
from tests.conftest import MANIFEST


def test_committed_manifest_matches_model():
    manifest = load_manifest(MANIFEST)
    assert manifest.sha256 == sha256_of(manifest.model_path)
    _, Interpreter = find_runtime()
    interpreter = Interpreter(model_path=str(manifest.model_path))
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert tuple(inp["shape"][1:3]) == manifest.input_size and inp["shape"][3] == 3
    assert int(np.prod(out["shape"][1:])) == len(manifest.labels)
    assert manifest.labels == CLOTHING_LABELS  # the book's ten, in the book's order
    assert manifest.model_path.stat().st_size <= 10 * 1024 * 1024


@pytest.fixture
def copied(tmp_path):
    shutil.copy(MANIFEST, tmp_path / MANIFEST.name)
    shutil.copy(MANIFEST.parent / load_manifest(MANIFEST).model_file, tmp_path)
    path = tmp_path / MANIFEST.name
    return path, json.loads(path.read_text())


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: m.update(labels=m["labels"][:-1]), "outputs 10 scores"),
        (lambda m: m.update(sha256="0" * 64), "do not belong together"),
        (lambda m: m.update(model_file="missing.tflite"), "model file not found"),
        (lambda m: m.update(input_size=[99, 99]), "input_size"),
        (lambda m: m.update(preprocessing="nonsense"), "unknown preprocessing"),
        (lambda m: m.update(output="maybe"), "'output'"),
        (lambda m: m.pop("labels"), "'labels' is missing"),
    ],
)
def test_mismatches_fail_at_load(copied, change, message):
    path, data = copied
    change(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=message):
        Classifier(path).load()


def test_missing_and_invalid_manifest(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        Classifier(tmp_path / "nope.json").load()
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ModelError, match="not valid JSON"):
        Classifier(tmp_path / "bad.json").load()


def test_runtime_marked_incompatible_fails_clearly(copied):
    path, data = copied
    runtime, _ = find_runtime()
    data["runtimes"] = {runtime: False}
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="ai-edge-litert"):
        Classifier(path).load()
