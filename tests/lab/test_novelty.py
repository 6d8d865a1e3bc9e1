"""The lab side of the verdict: exposing a model's features leaves its scores as they were, and the measures that
choose the signal and the thresholds."""

import numpy as np
import pytest

from core.interpreter import find_runtime
from core.manifest import load_manifest
from core.model import invoke
from lab.cv_serving import CrossValidationError
from lab.feature_output import FeatureOutputError, expose_features, scores_only
from lab.novelty import auroc, not_sure_bar, operating_point, pooled
from lab.novelty_fit import LAYERS, distance_of, fit_statistics, fit_with_small_views
from lab.tflite_graph import read, write
from tests.helpers import MANIFEST


def single_output_model() -> bytes:
    """The shipped model as a converter writes it: the scores alone."""
    return scores_only(load_manifest(MANIFEST).model_path.read_bytes())


def outputs_of(model_bytes: bytes, batch: np.ndarray) -> list[np.ndarray]:
    interpreter = find_runtime()[1](model_content=model_bytes)
    interpreter.allocate_tensors()
    return invoke(interpreter, batch)


def test_exposing_activations_leaves_the_scores_bit_for_bit():
    plain = single_output_model()
    exposed, lengths = expose_features(plain, LAYERS)
    assert lengths == [672, 192, 320] and expose_features(exposed, LAYERS) == (exposed, lengths)
    batch = np.random.default_rng(0).uniform(-1, 1, (1, 192, 192, 3)).astype(np.float32)
    (before,), (after, *activations) = outputs_of(plain, batch), outputs_of(exposed, batch)
    assert np.array_equal(before, after)
    assert [a.size for a in activations] == [6 * 6 * 672, 6 * 6 * 192, 6 * 6 * 320]
    assert activations[0].min() >= 0  # after a ReLU6


def test_the_shipped_model_is_the_converted_one_with_its_activations_exposed():
    shipped = load_manifest(MANIFEST).model_path.read_bytes()
    assert expose_features(single_output_model(), LAYERS)[0] == shipped


def test_a_model_not_ending_in_a_dense_layer_is_refused():
    model = read(single_output_model())
    graph = model.subgraphs[0]
    graph.outputs = [graph.operators[-2].outputs[0]]  # the pooling's output: no dense layer makes it
    with pytest.raises(FeatureOutputError, match="not made by a dense"):
        expose_features(write(model), ["pooled"])
    with pytest.raises(FeatureOutputError, match="no layer named 'block99_add'"):
        expose_features(single_output_model(), ["block99_add"])


def test_small_views_get_centres_of_their_own_and_leave_the_rest_as_far():
    """Two labels whose photos, shrunk, land elsewhere in feature space: fitted with their shrunk views as centres of
    their own, a new shrunk photo is typical (about 1) while it is an outlier for the photos alone; a point far
    from both stays far."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 300)
    plain = rng.normal(0, 1, (600, 8)) + labels[:, None] * 6.0
    small = plain * 0.3 + np.array([0, 0, 0, 0, 9, 9, 9, 9])  # shrunk: contracted and shifted
    new_small = rng.normal(0, 1, (50, 8)) * 0.3 + np.array([0, 0, 0, 0, 9, 9, 9, 9])
    alone = distance_of(fit_statistics([plain], labels))
    both = distance_of(fit_with_small_views([plain], [small], labels, label_count=2))
    assert both.layers[0].centres.shape == (4, 8)  # two labels, each as it is and shrunk
    assert np.median(both.batch([new_small])) < 1.5 < 3 < np.median(alone.batch([new_small]))
    far = np.full((1, 8), 40.0)
    assert both.batch([far])[0] > 5 and np.median(both.batch([plain[:50]])) < 1.5


def test_auroc():
    assert auroc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 1.0
    assert auroc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 0.0
    assert auroc(np.array([1.0, 3.0]), np.array([2.0, 3.0])) == 0.625  # 2 beats 1; 3 beats 1, ties 3


def test_not_sure_bar_keeps_the_most_photos_at_the_precision():
    # 10 photos, most sure first: the 4th and 8th wrong. 7 of the top 8 right is 87.5%; of the top 3, 100%.
    sure = np.linspace(4.0, 0.5, 10)
    logits = np.stack([sure, np.zeros(10)], axis=1)
    labels = np.array([0, 0, 0, 1, 0, 0, 0, 1, 0, 0])
    clothing = np.ones(10, dtype=bool)
    p = np.exp(sure) / (np.exp(sure) + 1)
    assert not_sure_bar(logits, labels, clothing, 1.0, 0.85) == round(p[6], 3)  # 6 of the top 7 right: 85.7%
    assert not_sure_bar(logits, labels, clothing, 1.0, 1.0) == round(p[2], 3)
    with pytest.raises(CrossValidationError):
        not_sure_bar(logits, 1 - np.zeros(10, dtype=int), clothing, 1.0, 0.9)


def test_the_operating_point_pools_the_development_set_once_per_fold():
    """Each fold's model measures the whole development set: pooled, its distances come once per fold, and each
    group's rate is taken over all of them while its photo count stays the set's."""
    rng = np.random.default_rng(0)

    def fold(dev_distances: np.ndarray) -> dict[str, np.ndarray]:
        labels = np.arange(100) % 2
        return {
            "held_distances": rng.uniform(0.5, 1.5, 100),
            "held_logits": np.stack([4.0 * (labels == 0), 4.0 * (labels == 1)], axis=1),
            "held_labels": labels,
            "small_distances": rng.uniform(0.5, 1.5, 10),
            "left_out_distances": rng.uniform(0.5, 1.5, 10),
            "dev_distances": dev_distances,
        }

    groups = np.array(["animals"] * 3 + ["people"])
    # fold 0 flags every animal, fold 1 none of them; the person is never flagged
    data = pooled([fold(np.array([9.0, 9.0, 9.0, 0.1])), fold(np.array([0.1, 0.1, 0.1, 0.1]))])
    point = operating_point(data, np.tile(groups, 2), {"people"}, 1.0, 0.01, 0.9, folds=2)
    assert point["not_clothing_by_group"] == {
        "animals": {"photos": 3, "not_clothing": 0.5},
        "people": {"photos": 1, "not_clothing": 0.0},
    }
    assert point["development_set_not_clothing"] == 0.5 and point["held_out"]["photos"] == 200


@pytest.mark.parametrize("name", ["coffee.png", "rocket.jpg", "coins.png", "horse.png"])
def test_shipped_model_answers_not_clothing_for_photos_that_ship_with_scikit_image(name):
    import io

    import skimage
    from PIL import Image

    from core.memory import PixelBudget
    from core.model import Classifier, DecodeRules
    from core.trace import Trace

    out = io.BytesIO()
    with Image.open(f"{skimage.data_dir}/{name}") as img:
        img.convert("RGB").save(out, "PNG")
    answer = Classifier(MANIFEST).classify(
        out.getvalue(), None, False, DecodeRules(10**8), PixelBudget(10**9), Trace(), details=True
    )
    assert answer["verdict"] == "not_clothing" and answer["clothing_distance"] > answer["threshold"], answer
