"""model/train.py end to end on a tiny budget (the real run takes about 20 minutes): it must keep working."""

import json

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


def test_each_network_has_its_own_recipe_and_the_command_line_wins():
    from model.train import parse_args

    pretrained, scratch = parse_args([]), parse_args(["--backbone", "none"])
    assert (pretrained.image_size, pretrained.epochs, pretrained.freeze_bn) == (192, 12, True)
    assert (scratch.image_size, scratch.epochs, scratch.freeze_bn) == (160, 80, False)
    assert parse_args(["--no-freeze-bn", "--epochs", "3"]).freeze_bn is False
    assert parse_args(["--epochs", "3"]).epochs == 3
