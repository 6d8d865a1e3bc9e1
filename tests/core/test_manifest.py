"""The committed manifest matches the committed model; broken manifests fail at load, clearly."""

import json

import numpy as np
import pytest

from core.errors import ModelError
from core.interpreter import find_runtime
from core.manifest import load_manifest, sha256_of
from core.model import Classifier
from lab.labels import CLOTHING_LABELS
from tests.helpers import MANIFEST


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
        # the verdict's rules (core/novelty.py)
        (lambda m: m["novelty"].update(method="knn"), 'must be "mahalanobis"'),
        (lambda m: m["novelty"].update(threshold=-1), "threshold must be a positive number"),
        (lambda m: m["novelty"].update(threshold=True), "threshold must be a positive number"),
        (lambda m: m["novelty"].pop("sha256"), "sha256 is missing"),
        (lambda m: m["novelty"].update(sha256="0" * 64), "belong to another model"),
        (lambda m: m["novelty"].update(statistics_file="gone.npz"), "novelty statistics not found"),
        (lambda m: m.update(not_sure_below=1.5), "'not_sure_below' must be a probability"),
        (lambda m: m.update(novelty="yes"), "'novelty' must be an object"),
        # the ImageNet gate (core/gate.py)
        (lambda m: m.update(gate=[]), "'gate' must be an object"),
        (lambda m: m["gate"].update(method="softmax"), 'must be "imagenet-classes"'),
        (lambda m: m["gate"].update(classes=[]), "classes must be a non-empty list"),
        (lambda m: m["gate"].update(classes=[1, "jersey"]), "classes must be a non-empty list"),
        (lambda m: m["gate"].update(classes=[True]), "classes must be a non-empty list"),
        (lambda m: m["gate"].update(classes=[610, 608, 610]), "names a class twice"),
        (lambda m: m["gate"].update(preprocessing="none"), "gate'.preprocessing must be one of"),
        (lambda m: m["gate"].update(from_distance=m["novelty"]["threshold"]), "would never be asked"),
        (lambda m: m["gate"].update(threshold="low"), "threshold must be a number"),
        (lambda m: m["gate"].update(from_distance=float("nan")), "from_distance must be a number"),
        (lambda m: m["gate"].pop("sha256"), "gate'.sha256 is missing"),
        (lambda m: m["gate"].update(sha256="0" * 64), "'gate': they do not belong together"),
        (lambda m: m["gate"].update(model_file="gone.tflite"), "gate model not found"),
        (lambda m: m["gate"].update(classes=[3, 1000]), "has 1000 outputs, fewer than the classes"),
        # the classifier as its own gate: the same input, but 10 outputs
        (lambda m: m["gate"].update(model_file=m["model_file"], sha256=m["sha256"]), "has 10 outputs"),
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


@pytest.mark.parametrize("temperature", [0, -1, "0.7", True, 1000])
def test_a_bad_temperature_is_refused_by_name(copied, temperature):
    path, data = copied
    data["temperature"] = temperature
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="'temperature'"):
        load_manifest(path)


def test_the_temperature_scales_probabilities_only(copied):
    """Temperature scaling (lab/calibrate.py): probabilities are softmax(logits / T); the default answer, the
    raw logits, is the same whatever T."""
    path, data = copied
    logits = np.array([2.0, 1.0, 0.5, 0, 0, 0, 0, 0, 0, -1], dtype=np.float32)
    answers = {}
    for temperature in (1.0, 0.5):
        data["temperature"] = temperature
        path.write_text(json.dumps(data))
        clf = Classifier(path).load()
        answers[temperature] = (clf.postprocess(logits), clf.postprocess(logits, probabilities=True))
    assert answers[1.0][0] == answers[0.5][0]
    expected = np.exp(logits / 0.5) / np.exp(logits / 0.5).sum()
    assert np.allclose(list(answers[0.5][1].values()), expected, atol=1e-6)
    assert answers[0.5][1]["dress"] > answers[1.0][1]["dress"]  # sharper: a T under 1 raises the top probability
