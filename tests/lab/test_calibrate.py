"""python -m lab.calibrate: the temperature it fits and the calibration error it reports, on logits whose true
temperature is known, and the whole command on a small cross-validation run laid out as train.py writes it."""

import json

import numpy as np
import pytest

from core.model import softmax
from lab.calibrate import calibrate, ece, fit_temperature, main
from lab.cv_serving import CrossValidationError


def drawn(temperature: float, n: int = 20000, seed: int = 0):
    """Logits, and labels drawn from softmax(logits / temperature): perfectly calibrated at that temperature."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(n, 10))
    probabilities = softmax(logits / temperature)
    labels = np.array([rng.choice(10, p=row) for row in probabilities])
    return logits, labels


def test_the_fitted_temperature_is_the_true_one_and_removes_the_error():
    logits, labels = drawn(0.7)
    fitted = fit_temperature(logits, labels)
    assert abs(fitted - 0.7) < 0.05
    assert ece(logits, labels, 1.0) > 0.05 and ece(logits, labels, fitted) < 0.02


def test_the_command_on_a_cross_validation_run(tmp_path):
    for k in range(3):
        fold = tmp_path / f"fold{k}"
        fold.mkdir()
        logits, labels = drawn(0.7, n=3000, seed=k)
        paths = np.array([f"data/{'train' if i % 5 else 'validation'}/x/{i}.jpg" for i in range(len(labels))])
        np.savez_compressed(fold / "oof.npz", logits=logits, labels=labels, paths=paths)
        (fold / "summary.json").write_text(json.dumps({"best_epoch": 7}))
    out = tmp_path / "calibration.json"
    assert main([str(tmp_path), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert len(result["folds"]) == 3 and 0 < result["cv_accuracy_mean"] < 1 and result["cv_accuracy_std"] >= 0
    assert abs(result["temperature"] - 0.7) < 0.05
    assert result["ece_out_of_fold_after"] < result["ece_out_of_fold_before"]


def test_served_logits_fit_on_every_out_of_fold_photo(tmp_path):
    """--served: the temperature of the folds' int8 logits as served (cv_serving.py), not float Keras'; with no
    --split to measure on, the fit uses every out-of-fold photo (the validation split's too)."""
    for k in range(3):
        fold = tmp_path / f"fold{k}"
        (fold / "int8-r1000").mkdir(parents=True)
        float_logits, float_labels = drawn(0.7, n=2000, seed=k)
        served_logits, served_labels = drawn(1.4, n=2000, seed=10 + k)
        paths = np.array([f"data/{'train' if k else 'validation'}/x/{i}.jpg" for i in range(2000)])
        np.savez_compressed(fold / "oof.npz", logits=float_logits, labels=float_labels, paths=paths)
        np.savez_compressed(
            fold / "int8-r1000" / "serving.npz", logits=served_logits, labels=served_labels, paths=paths
        )
        (fold / "summary.json").write_text(json.dumps({"best_epoch": 12}))
    out = tmp_path / "calibration.json"
    assert main([str(tmp_path), "--served", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert abs(result["temperature"] - 1.4) < 0.07 and result["fitted_on"] == "all out-of-fold photos"
    assert [f["fold"] for f in result["folds"]] == ["fold0", "fold1", "fold2"]
    assert "int8" in result["logits"] and result["ece_out_of_fold_after"] < result["ece_out_of_fold_before"]


def test_served_without_cv_serving_is_one_clear_line(tmp_path, capsys):
    fold = tmp_path / "fold0"
    fold.mkdir()
    logits, labels = drawn(0.7, n=100)
    np.savez_compressed(fold / "oof.npz", logits=logits, labels=labels, paths=np.array(["a/train/x.jpg"] * 100))
    (fold / "summary.json").write_text(json.dumps({"best_epoch": 1}))
    with pytest.raises(CrossValidationError, match=r"serving\.npz not found \(python -m lab\.cv_serving"):
        calibrate(tmp_path, None, None, served="int8-r1000")
    assert main([str(tmp_path), "--served"]) == 1
    assert capsys.readouterr().err.startswith("error: ")
