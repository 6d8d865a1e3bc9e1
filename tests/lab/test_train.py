"""python -m lab.train (lab/train.py and the steps it runs): the recipe a command line builds, the problems it refuses
in one line, and training end to end on a tiny budget (the real run takes about 20 minutes)."""

import json
import os
from pathlib import Path

import pytest

from tests.lab.conftest import SMALL_NETWORK, run_tool

pytest.importorskip("tensorflow", reason="TensorFlow (requirements-model.txt) is needed to train")

from lab.pipeline import check_backend
from lab.recipe import TrainingError, parse_recipe
from lab.train import main, train


def test_tiny_training_run_writes_model_history_and_summary(dataset, tmp_path):
    """What a run writes, on a small network trained from scratch; the pretrained EfficientNet-Lite0 (the default)
    trains end to end in test_pretrained.py."""
    out = tmp_path / "run"
    proc = run_tool(
        "lab.train", "--data-dir", dataset, "--out", out, "--limit", 64, "--epochs", 2, "--image-size", 32,
        "--warmup-epochs", 1, "--batch-size", 16, *SMALL_NETWORK,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Epoch 2/2" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["labels"][4] == "pants" and 0 <= summary["val_accuracy"] <= 1
    assert summary["args"]["backbone"] == "none" and summary["args"]["image_size"] == 32
    assert summary["args"]["widths"] == [8, 16] and summary["params"] < 10_000
    assert summary["command"].startswith("python -m lab.train --data-dir ")
    assert (out / "labels.txt").read_text().split() == summary["labels"]
    assert (out / "best.keras").stat().st_size > 0
    # The shipped file is the network alone: smaller than the checkpoint with its optimizer state (much smaller for
    # Lite0, test_pretrained.py; here the file's own overhead weighs as much as the 5,606 weights).
    assert 0 < (out / "model.keras").stat().st_size < (out / "best.keras").stat().st_size
    assert len((out / "history.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs


def test_a_missing_data_folder_is_a_training_error(tmp_path):
    recipe = parse_recipe(["--data-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "run")])
    with pytest.raises(TrainingError, match="data folder not found.*--data-dir must hold train/ and validation/"):
        train(recipe)
    assert not (tmp_path / "run").exists()


def test_main_turns_a_training_error_into_one_line_and_exit_1(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: data folder not found") and len(err.strip().splitlines()) == 1


def test_fewer_photos_than_a_batch_is_a_training_error(dataset, tmp_path):
    """Every batch is full (the remainder is dropped), so fewer photos than one batch would train nothing."""
    args = ["--data-dir", str(dataset), "--out", str(tmp_path / "run"), "--limit", "8", "--image-size", "32"]
    with pytest.raises(TrainingError, match="8 training photos is less than one batch of 32"):
        train(parse_recipe([*args, "--backbone", "none"]))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--fold", "1-5"], r"--fold '1-5': use I/K, e.g. 0/5"),
        (["--fold", "5/5"], r"--fold '5/5': K >= 2 and 0 <= I < K"),
        (["--widths", "32,x"], r"--widths '32,x': use whole numbers"),
        (["--widths", "32,64", "--blocks", "1"], "the same number of stages"),
    ],
)
def test_a_malformed_option_is_a_training_error(option, message):
    with pytest.raises(TrainingError, match=message):
        parse_recipe(option)


def test_all_photos_and_a_fold_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as exited:
        parse_recipe(["--all-photos", "--fold", "0/5"])
    assert exited.value.code == 2 and "exclude each other" in capsys.readouterr().err


def test_each_network_has_its_own_recipe_and_the_command_line_wins():
    pretrained, scratch = parse_recipe([]), parse_recipe(["--backbone", "none"])
    assert (pretrained.image_size, pretrained.epochs, pretrained.freeze_bn, pretrained.shrink) == (192, 12, True, 0.2)
    assert (scratch.image_size, scratch.epochs, scratch.freeze_bn, scratch.shrink) == (160, 80, False, 0.0)
    assert (pretrained.zoom, pretrained.shift, pretrained.mixup) == (0.0, 0.0, 0.0)
    assert (scratch.zoom, scratch.shift, scratch.mixup) == (0.2, 0.1, 0.2)
    assert pretrained.rotation == scratch.rotation == 0.05 and pretrained.ema == 0.99
    assert parse_recipe(["--no-freeze-bn", "--epochs", "3"]).freeze_bn is False
    assert parse_recipe(["--epochs", "3"]).epochs == 3
    assert parse_recipe(["--fold", "2/5"]).fold == (2, 5)
    assert parse_recipe(["--fold", "2/5"]).as_json()["fold"] == "2/5"


def test_the_recipe_is_fixed_once_built():
    import dataclasses

    recipe = parse_recipe([])
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.epochs = 3  # type: ignore[misc]


def test_each_network_augments_with_its_own_layers_in_the_input_pipeline():
    """The pretrained recipe has no zoom or shift (the whole garment stays in the frame): no layer for them; the
    network trained from scratch zooms and shifts. Inside tf.data, as lab/train.py uses them: same shapes, pixels
    still in 0-255, and each image changed."""
    import numpy as np
    import tensorflow as tf

    from lab.pipeline import training_augmentation

    pretrained = training_augmentation(parse_recipe([]))
    scratch = training_augmentation(parse_recipe(["--backbone", "none"]))
    names = [layer.__class__.__name__ for layer in pretrained.layers]
    assert names == ["RandomFlip", "RandomRotation", "RandomContrast", "RandomBrightness"]
    assert [layer.__class__.__name__ for layer in scratch.layers][2:4] == ["RandomZoom", "RandomTranslation"]
    images = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 3)).astype("float32")
    for augment in (pretrained, scratch):
        batches = tf.data.Dataset.from_tensor_slices(images).batch(4).map(lambda x, a=augment: a(x, training=True))
        out = np.asarray(next(iter(batches)))
        assert out.shape == images.shape and out.min() >= 0 and out.max() <= 255
        assert all(not np.allclose(a, b) for a, b in zip(out, images, strict=True))


def test_zoom_and_shift_at_zero_change_nothing_the_other_layers_draw():
    """Leaving the zero zoom and shift out keeps the pretrained recipe's augmentation, draw for draw, as it is with
    them in: identity layers, and each layer draws from its own seed."""
    import keras
    import numpy as np
    import tensorflow as tf

    from lab.augment import augmentation

    images = np.random.default_rng(1).integers(0, 256, (32, 40, 40, 3)).astype("float32")
    layers = keras.layers
    with_identities = keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=42),
            layers.RandomRotation(0.05, fill_mode="reflect", seed=43),
            layers.RandomZoom((0.0, 0.0), fill_mode="reflect", seed=44),
            layers.RandomTranslation(0.0, 0.0, fill_mode="reflect", seed=45),
            layers.RandomContrast(0.2, seed=46),
            layers.RandomBrightness(0.15, value_range=(0, 255), seed=47),
        ]
    )
    outputs = []
    for augment in (with_identities, augmentation(42, 0.05, 0.0, 0.0)):
        batches = tf.data.Dataset.from_tensor_slices(images).batch(8).map(lambda x, a=augment: a(x, training=True))
        outputs.append(np.concatenate([np.asarray(batch) for batch in batches]))
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_shrink_puts_a_smaller_photo_on_its_border_colour():
    """--shrink (the pretrained recipe's, 0.2): the photo at half size somewhere on a canvas of its border's
    colour, inside tf.data as lab/train.py uses it; with probability 0 the photo is untouched."""
    import numpy as np
    import tensorflow as tf

    from lab.augment import shrink_onto_background

    photo = np.zeros((64, 64, 3), np.uint8)
    photo[:] = (200, 10, 10)  # red border
    photo[1:-1, 1:-1] = (10, 200, 10)  # a green garment filling the frame
    data = tf.data.Dataset.from_tensors((photo, 3))
    shrunk, label = next(iter(data.map(shrink_onto_background(1.0, 0.5, 0.5))))
    shrunk = np.asarray(shrunk)
    assert shrunk.shape == photo.shape and int(label) == 3
    red = np.all(np.abs(shrunk - (200, 10, 10)) < 1, axis=-1).mean()
    green = np.all(np.abs(shrunk - (10, 200, 10)) < 1, axis=-1).mean()
    assert 0.74 <= red <= 0.8 and 0.18 <= green <= 0.25  # a 32 x 32 photo on a 64 x 64 canvas
    untouched, _ = next(iter(data.map(shrink_onto_background(0.0))))
    assert np.array_equal(np.asarray(untouched), photo)


def test_the_pytorch_backend_trains_without_tf_data_and_its_model_serves_on_tensorflow(dataset, tmp_path):
    """KERAS_BACKEND=torch (a GPU machine without TensorFlow): lab/batches.py feeds the same augmentations; the
    fold's model.keras, read back by TensorFlow's Keras (which converts it to TF Lite), gives the logits the
    PyTorch run saved for its held-out photos."""
    pytest.importorskip("torch", reason="PyTorch (requirements-model.txt) is the backend under test")
    import keras
    import numpy as np

    from lab.dataset import load_pixels

    out = tmp_path / "fold"
    proc = run_tool(
        "lab.train", "--data-dir", dataset, "--out", out, "--fold", "0/5", "--limit", 64, "--epochs", 2,
        "--image-size", 32, "--batch-size", 16,
        "--shrink", 0,  # the recipe's --shrink is a tf.data map
        env=dict(os.environ, KERAS_BACKEND="torch"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Epoch 2/2" in proc.stdout and "4/4" in proc.stdout  # 64 photos, batches of 16
    assert json.loads((out / "summary.json").read_text())["backend"] == "torch"
    oof = np.load(out / "oof.npz")
    assert len(oof["logits"]) == len(oof["labels"]) == len(oof["paths"]) > 600  # a fifth of 3,409 photos
    model = keras.saving.load_model(out / "model.keras", compile=False)
    pick = slice(0, 8)
    pixels = load_pixels([Path(p) for p in oof["paths"][pick]], 32).astype("float32")
    np.testing.assert_allclose(model.predict(pixels / 127.5 - 1.0, verbose=0), oof["logits"][pick], atol=1e-3)


def test_shrink_is_refused_outside_tensorflow():
    """--shrink (the pretrained recipe's, by default) is a tf.data map: on another backend it is one clear line
    that says how to train without it, before any photo is loaded."""
    with pytest.raises(TrainingError, match=r"--shrink 0\.2 runs in tf\.data.*--shrink 0 trains without it"):
        check_backend(parse_recipe([]), "torch")
    check_backend(parse_recipe(["--shrink", "0"]), "torch")
    check_backend(parse_recipe([]), "tensorflow")
