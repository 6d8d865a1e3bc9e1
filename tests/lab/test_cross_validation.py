"""Cross-validation to the shipped model: a fold's int8 model served on the photos it held out
(python -m lab.cv_serving), and the final fit on every photo (lab.train --all-photos), on tiny budgets. Training
runs in this process (Keras is loaded already); `python -m lab.train` itself is tests/lab/test_train.py's."""

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.lab.conftest import SMALL_NETWORK, run_main, run_tool

pytest.importorskip("tensorflow", reason="TensorFlow (requirements-model.txt) is needed to train")

TINY = ("--limit", 48, "--epochs", 1, "--image-size", 32, "--warmup-epochs", 0, "--batch-size", 16, *SMALL_NETWORK)


def test_fold_photos_partition_train_and_validation(dataset):
    from lab.cv_serving import fold_photos
    from lab.dataset import discover_labels

    labels = discover_labels(dataset / "train")
    everything = sorted((dataset / "validation").rglob("*.jpg")) + sorted((dataset / "train").rglob("*.jpg"))
    held_out = everything[::5]
    labels_of, train, held = fold_photos(dataset, labels, [str(p) for p in held_out])
    assert set(train).isdisjoint(held) and len(train) + len(held) == len(everything) == len(labels_of)
    assert {labels_of[p] for p in held} == set(labels)
    assert all(labels_of[p] == p.parent.name for p in held)


def test_a_photo_outside_the_dataset_is_refused(dataset, tmp_path):
    from lab.cv_serving import CrossValidationError, fold_photos

    stray = tmp_path / "stray.jpg"
    stray.write_bytes(b"")
    with pytest.raises(CrossValidationError, match="1 held-out photos are not under"):
        fold_photos(dataset, ["dress", "hat"], [str(stray)])


def test_a_fold_model_is_served_int8_on_the_photos_it_held_out(dataset, tmp_path, capsys):
    from lab.train import main

    run = tmp_path / "cv"
    code, _, err = run_main(main, capsys, "--data-dir", dataset, "--out", run / "fold3", "--fold", "3/5", *TINY)
    assert code == 0, err[-3000:]
    proc = run_tool("lab.cv_serving", run, "--data-dir", dataset, "--representative-count", 8, "--min-agreement", 0,
        "--json", run / "serving.json", "--confusion-png", run / "confusion.png",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run / "serving.json").read_text())
    oof = np.load(run / "fold3" / "oof.npz")
    served = np.load(run / "fold3" / "int8-r8" / "serving.npz")
    (fold,) = summary["folds"]
    assert fold["fold"] == "fold3" and fold["images"] == len(oof["labels"]) == summary["pooled_int8_served"]["images"]
    assert fold["images"] > 600 and (run / "confusion.png").read_bytes().startswith(b"\x89PNG")
    # The same photos, each once, through the serving code: as sent and mirrored.
    assert sorted(served["paths"]) == sorted(str(Path(p).resolve()) for p in oof["paths"])
    assert served["logits"].shape == served["mirrored"].shape == served["small"].shape == (len(oof["labels"]), 10)
    assert not np.allclose(served["logits"], served["mirrored"]) and not np.allclose(served["logits"], served["small"])
    assert 0 <= fold["int8_small_garment"] <= 1
    assert fold["int8_served"] == pytest.approx((served["logits"].argmax(1) == served["labels"]).mean(), abs=1e-4)
    manifest = json.loads((run / "fold3" / "int8-r8" / "clothing-model.json").read_text())
    assert manifest["quantization"] == "int8" and manifest["input_size"] == [32, 32]


def test_the_final_fit_trains_on_every_photo_and_keeps_the_last_epoch(dataset, tmp_path, capsys):
    from lab.train import main

    out = tmp_path / "final"
    code, printed, err = run_main(main, capsys, "--data-dir", dataset, "--out", out, "--all-photos", *TINY)
    assert code == 0, err[-3000:]
    assert "loaded 48 train / 0 validation images" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best_epoch"] == 1 and summary["val_accuracy"] is None and summary["args"]["all_photos"]
    assert not (out / "best.keras").exists()
    # The shipped file is the network alone: smaller than the checkpoint with its optimizer state.
    assert 0 < (out / "model.keras").stat().st_size < (out / "last.keras").stat().st_size
    with zipfile.ZipFile(out / "model.keras") as archive:
        assert not json.loads(archive.read("config.json")).get("compile_config")  # no optimizer
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert len(rows) == 1 and rows[0].get("val_accuracy") in (None, "NA")  # nothing was held out


def test_a_small_garment_view_is_the_photo_shrunk_on_its_border_colour():
    from PIL import Image

    from lab.cv_serving import small_garment

    photo = Image.new("RGB", (40, 60), (200, 10, 10))
    photo.paste((10, 200, 10), (10, 10, 30, 50))  # a green garment on red
    view = small_garment(photo)
    assert view.size == photo.size
    assert view.getpixel((0, 0)) == view.getpixel((39, 59)) == (200, 10, 10)  # the border's colour
    assert view.getpixel((20, 30)) == (10, 200, 10)  # the garment, in the middle
    assert view.getpixel((11, 16)) == (200, 10, 10)  # where the garment's corner was, now background
