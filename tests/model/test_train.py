"""model/train.py end to end on a tiny budget (the real run takes about 20 minutes): it must keep working."""

import json
from pathlib import Path

import pytest

from tests.model.conftest import run_tool

pytest.importorskip("tensorflow", reason="TensorFlow (requirements-model.txt) is needed to train")


@pytest.mark.parametrize("backbone", ["efficientnet-lite0", "none"])
def test_tiny_training_run_writes_model_history_and_summary(dataset, tmp_path, backbone):
    """Both networks: the pretrained EfficientNet-Lite0 (the default) and the small CNN trained from scratch."""
    out = tmp_path / "run"
    proc = run_tool(
        "train.py",
        "--data-dir",
        dataset,
        "--out",
        out,
        "--limit",
        64,
        "--epochs",
        2,
        "--image-size",
        32,
        "--warmup-epochs",
        1,
        "--batch-size",
        16,
        "--backbone",
        backbone,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Epoch 2/2" in proc.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["labels"][4] == "pants" and 0 <= summary["val_accuracy"] <= 1
    assert summary["args"]["backbone"] == backbone
    assert (out / "labels.txt").read_text().split() == summary["labels"]
    assert (out / "best.keras").stat().st_size > 0
    # The shipped file is the network alone: much smaller than the checkpoint with its optimizer state.
    assert 0 < (out / "model.keras").stat().st_size < (out / "best.keras").stat().st_size / 2
    assert len((out / "history.csv").read_text().strip().splitlines()) == 3  # header + 2 epochs


def test_missing_data_folder_is_one_clear_line(tmp_path):
    proc = run_tool("train.py", "--data-dir", tmp_path / "nope", "--out", tmp_path / "run", timeout=300)
    assert proc.returncode == 1
    assert "data folder not found" in proc.stderr and "Traceback" not in proc.stderr


def test_fewer_photos_than_a_batch_is_one_clear_line(dataset, tmp_path):
    """Every batch is full (the remainder is dropped), so fewer photos than one batch would train nothing."""
    args = ["--data-dir", dataset, "--out", tmp_path / "run", "--limit", 8, "--image-size", 32, "--backbone", "none"]
    proc = run_tool("train.py", *args, timeout=300)
    assert proc.returncode == 1 and "8 training photos is less than one batch of 32" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()


def test_each_network_has_its_own_recipe_and_the_command_line_wins():
    from model.train import parse_args

    pretrained, scratch = parse_args([]), parse_args(["--backbone", "none"])
    assert (pretrained.image_size, pretrained.epochs, pretrained.freeze_bn, pretrained.shrink) == (192, 12, True, 0.2)
    assert (scratch.image_size, scratch.epochs, scratch.freeze_bn, scratch.shrink) == (160, 80, False, 0.0)
    assert (pretrained.zoom, pretrained.shift, scratch.zoom, scratch.shift) == (0.0, 0.0, 0.2, 0.1)
    assert parse_args(["--no-freeze-bn", "--epochs", "3"]).freeze_bn is False
    assert parse_args(["--epochs", "3"]).epochs == 3


def test_the_augmentation_levers_run_in_the_input_pipeline():
    """--zoom-out, --randaugment and --erasing (measured levers, off by default) inside tf.data, as train.py
    uses them: same shapes, pixels still in 0-255, and each image changed."""
    import keras
    import numpy as np
    import tensorflow as tf

    from model.augment import augmentation

    augment = augmentation(keras, 7, zoom_out=0.5, randaugment=2, erasing=1.0)
    assert [layer.__class__.__name__ for layer in augment.layers][-2:] == ["RandAugment", "RandomErasing"]
    images = np.random.default_rng(0).integers(0, 256, (4, 48, 48, 3)).astype("float32")
    out = next(iter(tf.data.Dataset.from_tensor_slices(images).batch(4).map(lambda x: augment(x, training=True))))
    out = np.asarray(out)
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 255
    assert all(not np.allclose(a, b) for a, b in zip(out, images, strict=True))
    plain = augmentation(keras, 7)
    assert [layer.__class__.__name__ for layer in plain.layers][-1] == "RandomBrightness"


def test_shrink_puts_a_smaller_photo_on_its_border_colour():
    """--shrink (the pretrained recipe's, 0.2): the photo at half size somewhere on a canvas of its border's
    colour, inside tf.data as train.py uses it; with probability 0 the photo is untouched."""
    import numpy as np
    import tensorflow as tf

    from model.augment import shrink_onto_background

    photo = np.zeros((64, 64, 3), np.uint8)
    photo[:] = (200, 10, 10)  # red border
    photo[1:-1, 1:-1] = (10, 200, 10)  # a green garment filling the frame
    data = tf.data.Dataset.from_tensors((photo, 3))
    shrunk, label = next(iter(data.map(shrink_onto_background(tf, 1.0, 0.5, 0.5))))
    shrunk = np.asarray(shrunk)
    assert shrunk.shape == photo.shape and int(label) == 3
    red = np.all(np.abs(shrunk - (200, 10, 10)) < 1, axis=-1).mean()
    green = np.all(np.abs(shrunk - (10, 200, 10)) < 1, axis=-1).mean()
    assert 0.74 <= red <= 0.8 and 0.18 <= green <= 0.25  # a 32 x 32 photo on a 64 x 64 canvas
    untouched, _ = next(iter(data.map(shrink_onto_background(tf, 0.0))))
    assert np.array_equal(np.asarray(untouched), photo)


def test_the_pytorch_backend_trains_without_tf_data_and_its_model_serves_on_tensorflow(dataset, tmp_path):
    """KERAS_BACKEND=torch (a GPU machine without TensorFlow): model/batches.py feeds the same augmentations; the
    fold's model.keras, read back by TensorFlow's Keras (which converts it to TF Lite), gives the logits the
    PyTorch run saved for its held-out photos."""
    pytest.importorskip("torch", reason="PyTorch (requirements-model.txt) is the backend under test")
    import os
    import subprocess
    import sys

    import keras
    import numpy as np

    from model.dataset import load_pixels
    from tests.helpers import ROOT

    out = tmp_path / "fold"
    command = [sys.executable, str(ROOT / "model" / "train.py"), "--data-dir", str(dataset), "--out", str(out)]
    command += ["--fold", "0/5", "--limit", "64", "--epochs", "2", "--image-size", "32", "--batch-size", "16"]
    command += ["--shrink", "0"]  # the recipe's --shrink is a tf.data map
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env=dict(os.environ, KERAS_BACKEND="torch")
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Epoch 2/2" in proc.stdout and "4/4" in proc.stdout  # 64 photos, batches of 16
    assert json.loads((out / "summary.json").read_text())["backend"] == "torch"
    oof = np.load(out / "oof.npz")
    assert len(oof["logits"]) == len(oof["labels"]) == len(oof["paths"]) > 600  # a fifth of 3,409 photos
    model = keras.saving.load_model(out / "model.keras", compile=False)
    pick = slice(0, 8)
    pixels = load_pixels([Path(p) for p in oof["paths"][pick]], 32).astype("float32")
    np.testing.assert_allclose(model.predict(pixels / 127.5 - 1.0, verbose=0), oof["logits"][pick], atol=1e-3)


def test_shrink_is_refused_outside_tensorflow(tmp_path):
    """--shrink (the pretrained recipe's, by default) is a tf.data map: on another backend it is one clear line
    that says how to train without it, not a crash mid-training."""
    import os
    import subprocess
    import sys

    from tests.helpers import ROOT

    command = [sys.executable, str(ROOT / "model" / "train.py"), "--out", str(tmp_path / "run")]
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=dict(os.environ, KERAS_BACKEND="torch")
    )
    assert proc.returncode == 1 and "--shrink 0.2 runs in tf.data" in proc.stderr and "--shrink 0 trains" in proc.stderr
    assert "Traceback" not in proc.stderr
