"""Fitting the ImageNet gate: the class set, the threshold, the folds, and the rule serving applies."""

import numpy as np
import pytest

from lab.gate_fit import clothing_classes, combined, cross_validated, fit, rates, scores


def one_hot_ish(top: list[int], classes: int = 6) -> np.ndarray:
    """Each photo's probabilities: 0.9 on its top class, the rest spread evenly."""
    p = np.full((len(top), classes), 0.1 / (classes - 1))
    p[np.arange(len(top)), top] = 0.9
    return p


def test_the_classes_are_the_fewest_that_cover_the_share_of_top_answers():
    p = one_hot_ish([0] * 6 + [3] * 3 + [5])
    assert clothing_classes(p, 0.6) == (0,)
    assert clothing_classes(p, 0.61) == (0, 3)
    assert clothing_classes(p, 0.9) == (0, 3)
    assert clothing_classes(p, 1.0) == (0, 3, 5)


def test_the_threshold_is_the_quantile_of_the_photos_log_odds():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(6), size=400)
    p[:, 0] += 1.0
    p /= p.sum(axis=1, keepdims=True)
    fitted = fit(p, cover=0.95, flag=0.05)
    assert fitted.classes[0] == 0
    assert np.mean(scores(p, fitted.classes) < fitted.threshold) == pytest.approx(0.05, abs=0.003)


def test_cross_validation_counts_each_photo_once_by_a_fit_that_did_not_see_it():
    # Four folds; the last one's photos answer class 4, which no other fold answers: fitted without them, the
    # class set leaves them out and every one is flagged.
    p = one_hot_ish([0, 1] * 30 + [4] * 20)
    folds = [np.zeros(80, dtype=bool) for _ in range(4)]
    for i in range(60):
        folds[i % 3][i] = True
    folds[3][60:] = True
    result = cross_validated(p, folds, cover=1.0, flag=0.0)
    assert result["flagged"][60:].all() and not result["flagged"][:60].any()
    assert result["held_out_flagged"] == pytest.approx(0.25)
    assert [f["held_out_flagged"] for f in result["per_fold"]] == [0.0, 0.0, 0.0, 1.0]


def test_the_combined_rule_asks_the_gate_only_in_the_band():
    distance = np.array([0.9, 1.2, 1.2, 1.5, 1.4])
    gate_says_not = np.array([True, True, False, False, True])
    assert combined(distance, 1.4, 1.1, gate_says_not).tolist() == [False, True, False, True, True]


def test_rates_leave_the_kept_apart_groups_out_of_the_total():
    flagged = np.array([True, False, True, True])
    groups = np.array(["a", "a", "people", "b"])
    report = rates(flagged, groups, {"people"})
    assert report["development_set_not_clothing"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["by_group"] == {"a": 0.5, "b": 1.0, "people": 1.0}
