"""The ImageNet gate: asked only where the distance leaves room for doubt, and then its say decides; the shipped
gate on real photos, through the classifier as serving runs it."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from core.gate import ClothingGate, GateRule, log_odds
from core.interpreter import find_runtime
from core.manifest import load_manifest
from core.memory import PixelBudget
from core.model import Classifier, DecodeRules
from core.novelty import verdict
from core.trace import Trace
from tests.core.test_novelty import CAT, details_of
from tests.helpers import MANIFEST


def shipped_gate() -> ClothingGate:
    manifest = load_manifest(MANIFEST)
    assert manifest.gate is not None and manifest.gate_path is not None

    def make(path: Path):
        interpreter = find_runtime()[1](model_path=str(path))
        interpreter.allocate_tensors()
        return interpreter

    return ClothingGate(manifest.gate_path, manifest.gate, make)


@pytest.mark.parametrize(
    "distance, threshold, asked",
    [
        (1.0, 1.4, False),  # typical: the distance decides alone
        (1.2, 1.4, True),  # in the band
        (1.4, 1.4, True),  # the threshold itself is still clothing by the distance
        (1.5, 1.4, False),  # not clothing by the distance already
        (None, None, True),  # no statistics: every photo
    ],
)
def test_the_gate_is_asked_only_where_the_distance_leaves_doubt(distance, threshold, asked):
    assert GateRule("g.tflite", "", "xception", (1,), -4.0, from_distance=1.1).applies(distance, threshold) is asked


def test_the_gates_no_makes_a_photo_not_clothing_whatever_the_rest_says():
    assert verdict(1.2, 1.4, 0.99, 0.5, gate_says_not=True) == "not_clothing"
    assert verdict(1.2, 1.4, 0.99, 0.5, gate_says_not=False) == "clothing"
    assert verdict(1.2, 1.4, 0.3, 0.5, gate_says_not=False) == "not_sure"
    assert verdict(None, None, 0.99, None, gate_says_not=False) == "clothing"  # the gate alone is a rule too
    assert verdict(None, None, 0.99, None, gate_says_not=True) == "not_clothing"


def test_log_odds_of_a_class_set_and_its_limits():
    p = np.array([0.5, 0.25, 0.25])
    assert log_odds(p, (1, 2)) == pytest.approx(0.0)
    assert log_odds(p, (0, 1)) == pytest.approx(math.log(3))
    assert math.isfinite(log_odds(p, (0, 1, 2))) and math.isfinite(log_odds(np.array([1.0, 0.0]), (1,)))


def test_the_shipped_gate_knows_imagenet_and_sees_clothing_in_the_pants_photo(pants_photo):
    gate = shipped_gate()
    assert gate.outputs == 1000 and gate.problem(load_manifest(MANIFEST).input_size) is None
    assert "takes input" in gate.problem((160, 160))
    classifier = Classifier(MANIFEST).load()
    cat = gate.probabilities(classifier.sample(image_of(CAT)))
    assert 281 <= int(cat.argmax()) <= 285  # ImageNet's domestic cats
    assert cat.sum() == pytest.approx(1.0, abs=1e-4)
    pants = gate.log_odds(classifier.sample(image_of(pants_photo)))
    assert pants > gate.rule.threshold


def image_of(path: Path):
    from PIL import Image

    return Image.open(path).convert("RGB")


def test_a_photo_in_the_band_the_gate_rejects_is_not_clothing():
    """scikit-image's motorcycle: close enough to the clothing by the distance, but nothing ImageNet calls clothing."""
    skimage = pytest.importorskip("skimage", reason="the photo is scikit-image's (not in the book's stack's venv)")
    photo = Path(skimage.__file__).parent / "data" / "motorcycle_right.png"
    answer = details_of(Classifier(MANIFEST), photo.read_bytes())
    rule = load_manifest(MANIFEST).gate
    assert rule.from_distance < answer["clothing_distance"] <= answer["threshold"], answer  # the band
    assert answer["imagenet_gate"]["clothing_log_odds"] < answer["imagenet_gate"]["threshold"] == rule.threshold
    assert answer["verdict"] == "not_clothing"
    # A flat answer does not pay for the gate: its log line carries the distance's verdict.
    trace = Trace()
    Classifier(MANIFEST).classify(photo.read_bytes(), None, False, DecodeRules(10**8), PixelBudget(10**9), trace)
    assert "not_clothing" not in trace.verdicts and sum(trace.verdicts.values()) == 1, trace.verdicts


def test_the_gate_is_not_asked_outside_the_band(copied, pants_photo):
    cat = details_of(Classifier(MANIFEST), CAT.read_bytes())
    assert cat["verdict"] == "not_clothing" and "imagenet_gate" not in cat  # the distance decided
    path, data = copied
    data["gate"]["from_distance"] = data["novelty"]["threshold"] - 0.01  # a band too narrow for the pants photo
    path.write_text(json.dumps(data))
    pants = details_of(Classifier(path), pants_photo.read_bytes())
    assert pants["verdict"] == "clothing" and "imagenet_gate" not in pants
    assert pants["clothing_distance"] < data["gate"]["from_distance"]


def test_a_manifest_with_the_gate_and_no_statistics_asks_it_for_every_photo(copied, pants_photo):
    path, data = copied
    del data["novelty"]
    path.write_text(json.dumps(data))
    classifier = Classifier(path)
    cat, pants = (details_of(classifier, p.read_bytes()) for p in (CAT, pants_photo))
    assert "clothing_distance" not in cat and cat["imagenet_gate"]["clothing_log_odds"] < data["gate"]["threshold"]
    assert cat["verdict"] == "not_clothing" and pants["verdict"] == "clothing"
