"""The verdict of a ``details`` answer: the distance the statistics measure, the rules that turn it into a verdict,
the shipped model's answers for clothing and for photos of no clothing, and a model without statistics."""

import json

import numpy as np
import pytest

from core.errors import ModelError
from core.manifest import load_manifest, sha256_of
from core.memory import PixelBudget
from core.model import Classifier, DecodeRules
from core.novelty import STATISTICS, ClothingDistance, LayerDistance, verdict
from core.trace import Trace
from lab.novelty_fit import LAYERS, distance_of, fit_layer, fit_statistics, save_statistics
from tests.helpers import MANIFEST, ROOT

CAT = ROOT / "samples" / "cat.jpg"  # scikit-image's chelsea: no clothing


def test_distance_is_mahalanobis_to_the_nearest_label_over_its_median():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 600)
    features = rng.normal(size=(600, 8)) * np.arange(1, 9) + labels[:, None] * 3.0
    fitted = fit_layer(features, labels, shrinkage=0.0)
    distance = LayerDistance(*(fitted[key] for key in STATISTICS))
    means = np.stack([features[labels == k].mean(axis=0) for k in range(3)])
    centred = features - means[labels]
    precision = np.linalg.inv(centred.T @ centred / len(features))

    def textbook(x):
        return np.array([np.sqrt((x - m) @ precision @ (x - m)) for m in means])

    own = np.array([textbook(x)[k] for x, k in zip(features, labels, strict=True)])
    scale = np.array([np.median(own[labels == k]) for k in range(3)])
    probe = rng.normal(size=(20, 8)) * 6
    expected = np.array([(textbook(x) / scale).min() for x in probe])
    assert np.allclose([distance(x) for x in probe], expected, rtol=2e-3)  # float16 whitening: ~0.1%
    assert np.allclose(distance.batch(probe), expected, rtol=2e-3)


def test_clothing_distance_is_the_mean_over_layers_of_pooled_activations():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 300)
    small, wide = rng.normal(size=(300, 4)), rng.normal(size=(300, 6)) + labels[:, None]
    both = distance_of(fit_statistics([small, wide], labels), ["a", "b"])
    grid = rng.normal(size=(3, 3, 6))  # a 3 x 3 activation of 6 channels, as the model outputs it (NHWC)
    alone = [both.layers[0](small[0]), both.layers[1](grid.reshape(-1, 6).mean(axis=0))]
    assert both([small[0], grid.reshape(-1)]) == pytest.approx(sum(alone) / 2)
    assert both.batch([small[:1], grid.reshape(-1, 6).mean(axis=0, keepdims=True)])[0] == pytest.approx(sum(alone) / 2)
    with pytest.raises(ValueError):
        both([small[0]])


@pytest.mark.parametrize(
    "distance, threshold, confidence, bar, expected",
    [
        (1.0, 2.0, 0.9, 0.5, "clothing"),
        (2.5, 2.0, 0.99, 0.5, "not_clothing"),  # far from the clothing, however sure the scores look
        (1.0, 2.0, 0.4, 0.5, "not_sure"),
        (2.0, 2.0, 0.5, 0.5, "clothing"),  # both bars are inclusive of the clothing side
        (None, None, 0.4, 0.5, "not_sure"),  # no statistics: the probability rule alone
        (None, None, 0.9, None, None),  # neither rule: no verdict
        (3.0, 2.0, 0.9, None, "not_clothing"),
    ],
)
def test_verdict_rules(distance, threshold, confidence, bar, expected):
    assert verdict(distance, threshold, confidence, bar) == expected


def details_of(classifier, data: bytes, **options):
    rules = DecodeRules(max_pixels=10**8)
    return classifier.classify(data, None, False, rules, PixelBudget(10**9), Trace(), details=True, **options)


def test_shipped_model_answers_clothing_for_the_pants_photo(pants_photo):
    classifier = Classifier(MANIFEST)
    answer = details_of(classifier, pants_photo.read_bytes())
    manifest = load_manifest(MANIFEST)
    assert answer["label"] == "pants" and answer["verdict"] == "clothing"
    assert answer["threshold"] == manifest.novelty.threshold and answer["clothing_distance"] < answer["threshold"]
    assert answer["confidence"] >= manifest.not_sure_below
    assert answer["model"] == {"name": manifest.name, "version": manifest.version}
    flat = classifier.classify(pants_photo.read_bytes(), None, False, DecodeRules(10**8), PixelBudget(10**9), Trace())
    assert answer["scores"] == flat  # the flat answer, unchanged, under "scores"


def test_shipped_model_answers_not_clothing_for_a_cat():
    answer = details_of(Classifier(MANIFEST), CAT.read_bytes())
    assert answer["verdict"] == "not_clothing", answer
    assert answer["clothing_distance"] > answer["threshold"]
    assert answer["label"] in load_manifest(MANIFEST).labels  # still there, for a client that shows it


def test_a_model_without_statistics_answers_details_with_what_it_has(copied, pants_photo):
    import os

    if os.environ.get("EXPECT_TFLITE_RUNTIME") == "tflite_runtime":
        pytest.skip("the book's stack (.venv-tflite) has no TensorFlow to cut the model's outputs with")
    from lab.feature_output import scores_only

    path, data = copied
    model = path.parent / data["model_file"]
    model.write_bytes(scores_only(model.read_bytes()))  # a third-party model: the scores alone
    data["sha256"] = sha256_of(path.parent / data["model_file"])
    del data["novelty"], data["gate"]
    path.write_text(json.dumps({**data, "not_sure_below": 0.999}))
    answer = details_of(Classifier(path), pants_photo.read_bytes())
    assert answer["verdict"] == "not_sure" and "clothing_distance" not in answer and "threshold" not in answer
    del data["not_sure_below"]
    path.write_text(json.dumps(data))
    answer = details_of(Classifier(path), pants_photo.read_bytes())
    assert list(answer) == ["scores", "label", "confidence", "model"] and answer["label"] == "pants"


def test_the_verdict_can_be_turned_off_by_the_manifest_alone(copied, pants_photo):
    """The shipped file with a manifest that names no statistics: the scores, no verdict, the same flat answer."""
    path, data = copied
    del data["novelty"], data["not_sure_below"], data["gate"]
    path.write_text(json.dumps(data))
    classifier = Classifier(path)
    answer = details_of(classifier, pants_photo.read_bytes())
    assert list(answer) == ["scores", "label", "confidence", "model"] and answer["label"] == "pants"
    assert answer["scores"] == details_of(Classifier(MANIFEST), pants_photo.read_bytes())["scores"]


def test_statistics_for_other_features_are_refused(copied):
    path, data = copied
    stats = path.parent / data["novelty"]["statistics_file"]
    rng = np.random.default_rng(1)
    wrong = [rng.normal(size=(200, 16)) for _ in LAYERS]  # 16 channels each; the model's layers have more
    save_statistics(stats, fit_statistics(wrong, rng.integers(0, 10, 200)), LAYERS)
    data["novelty"]["sha256"] = sha256_of(stats)
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"outputs after the scores have \[672, 192, 320\] channels"):
        Classifier(path).load()


def test_statistics_load_refuses_a_wrong_file(tmp_path):
    (tmp_path / "x.npz").write_bytes(b"not numpy")
    with pytest.raises((OSError, ValueError)):
        ClothingDistance.load(tmp_path / "x.npz")
    with pytest.raises(ValueError, match="scale"):
        LayerDistance(np.eye(3), np.zeros((2, 3)), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="do not match"):
        LayerDistance(np.eye(3), np.zeros((2, 4)), np.array([1.0, 1.0]))


def test_shipped_statistics_are_small():
    statistics = load_manifest(MANIFEST).statistics_path
    assert statistics.stat().st_size < 4 * 1024 * 1024
    assert statistics.parent == ROOT / "model"
