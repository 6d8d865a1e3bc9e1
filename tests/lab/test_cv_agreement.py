"""python -m lab.cv_agreement on small cross-validation runs laid out as train.py writes them, built so that the
answers are known: which photos each run gets wrong, and what their ensemble answers."""

import csv
import json

import numpy as np
import pytest

from lab.cv_agreement import agreement, main
from lab.cv_serving import CrossValidationError

LABELS = ["dress", "hat", "pants"]


def write_run(root, name, answers_by_fold, confidence=4.0, paths_by_fold=None):
    """A run whose fold k answers answers_by_fold[k] (one label index per photo) with the given logit margin."""
    run = root / name
    for k, answers in enumerate(answers_by_fold):
        fold = run / f"fold{k}"
        fold.mkdir(parents=True)
        answers = np.asarray(answers)
        logits = np.zeros((len(answers), len(LABELS)))
        logits[np.arange(len(answers)), answers] = confidence
        paths = paths_by_fold[k] if paths_by_fold else [f"data/train/x/{k}-{i}.jpg" for i in range(len(answers))]
        np.savez_compressed(fold / "oof.npz", logits=logits, labels=TRUTH[k], paths=np.array(paths))
        (fold / "summary.json").write_text(json.dumps({"best_epoch": 12}))
        (fold / "labels.txt").write_text("\n".join(LABELS) + "\n")
    return run


TRUTH = [np.array([0, 1, 2, 0]), np.array([2, 2, 1, 0])]


def test_accuracy_ensemble_and_the_mistakes_every_run_makes(tmp_path):
    # Fold 0: photo 3 wrong for all three runs (all answer hat); photo 0 wrong for run a only.
    # Fold 1: photo 1 wrong for all three, with different answers; photo 2 wrong for b and c.
    a = write_run(tmp_path, "a", [[2, 1, 2, 1], [2, 0, 1, 0]])
    b = write_run(tmp_path, "b", [[0, 1, 2, 1], [2, 1, 0, 0]])
    c = write_run(tmp_path, "c", [[0, 1, 2, 1], [2, 0, 0, 0]], confidence=1.0)
    out, mistakes = tmp_path / "agreement.json", tmp_path / "mistakes.csv"
    assert main([str(a), str(b), str(c), "--json", str(out), "--shared-mistakes", str(mistakes)]) == 0
    result = json.loads(out.read_text())
    assert result["photos"] == 8
    assert result["runs"][str(a)]["folds"] == [0.5, 0.75]
    assert result["runs"][str(b)]["folds"] == [0.75, 0.5]
    # The ensemble averages probabilities: fold 0's photo 0 right (b and c outvote a), fold 1's photo 2 wrong
    # (b and c outvote a the other way).
    assert result["ensemble"]["folds"] == [0.75, 0.5]
    assert result["photos_wrong_by"] == {"0": 4, "1": 1, "2": 1, "3": 2}
    assert result["wrong_by_all"] == 2 and result["wrong_by_all_with_one_answer"] == 1
    rows = list(csv.DictReader(mistakes.open()))
    assert [(r["path"], r["label"], r["a"], r["b"], r["c"]) for r in rows] == [
        ("data/train/x/0-3.jpg", "dress", "hat", "hat", "hat"),
        ("data/train/x/1-1.jpg", "pants", "dress", "hat", "dress"),
    ]


def test_runs_whose_folds_held_out_other_photos_are_refused(tmp_path):
    a = write_run(tmp_path, "a", [[0, 1, 2, 0], [2, 2, 1, 0]])
    other = [[f"data/train/x/0-{i}.jpg" for i in range(4)], [f"data/train/x/other-{i}.jpg" for i in range(4)]]
    b = write_run(tmp_path, "b", [[0, 1, 2, 0], [2, 2, 1, 0]], paths_by_fold=other)
    with pytest.raises(CrossValidationError, match="held out other photos"):
        agreement([a, b])
    assert main([str(a), str(b)]) == 1


def test_one_run_alone_is_refused(tmp_path, capsys):
    a = write_run(tmp_path, "a", [[0, 1, 2, 0], [2, 2, 1, 0]])
    with pytest.raises(SystemExit):
        main([str(a)])
    assert "at least two runs" in capsys.readouterr().err
