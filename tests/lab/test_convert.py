"""python -m lab.convert (lab/convert.py and the steps it runs) on real Keras models: the book's Xception shape, a small
model in every format and quantization mode, and broken inputs that must give one clear line, not a traceback."""

import json
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow", reason="TensorFlow (requirements-model.txt) is needed to convert models")
keras = pytest.importorskip("keras")

from core.model import Classifier
from lab.convert import main as convert_main
from tests.lab.conftest import run_main, run_tool


def small_model(outputs=10, softmax=False):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((64, 64, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.DepthwiseConv2D(3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(outputs, activation="softmax" if softmax else None)(x)
    return keras.Model(inputs, x)


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "small.keras"
    small_model().save(path)
    return path


def run(capsys, *args):
    return run_main(convert_main, capsys, *args)


def run_int8(capsys, source, out, image_dir, *args):
    """convert.py to full integer, calibrated and parity-checked on ``image_dir``."""
    return run(
        capsys,
        source,
        "--out",
        out,
        "--quantize",
        "int8",
        "--representative-dir",
        image_dir,
        "--parity-dir",
        image_dir,
        *args,
    )


def test_book_shaped_xception_h5_converts_with_parity(tmp_path, image_dir, capsys):
    """The book's model shape: Xception, weights=None, 10 classes, 299x299, saved as legacy .h5."""
    model = keras.applications.Xception(weights=None, classes=10, input_shape=(299, 299, 3))
    source = tmp_path / "xception_v4_large.h5"
    model.save(source)
    out = tmp_path / "xception.tflite"
    code, stdout, err = run(capsys, source, "--out", out, "--parity-dir", image_dir, "--parity-count", 4)
    assert code == 0, stdout + err
    assert "top-1 agree" in stdout and "max abs diff" in stdout
    manifest = json.loads(out.with_suffix(".json").read_text())
    assert manifest["input_size"] == [299, 299] and manifest["output"] == "probabilities"
    assert manifest["parity"]["top1_agreement"] == 1.0
    result = Classifier(out.with_suffix(".json")).load()
    assert result.manifest.input_size == (299, 299)


@pytest.mark.parametrize("mode", ["none", "float16", "dynamic", "int8"])
def test_every_quantization_mode_loads_and_runs_in_serving(keras_file, image_dir, tmp_path, capsys, mode):
    out = tmp_path / f"small-{mode}.tflite"
    code, stdout, err = run(
        capsys,
        keras_file,
        "--out",
        out,
        "--quantize",
        mode,
        "--representative-dir",
        image_dir,
        "--parity-dir",
        image_dir,
        "--labels",
        ",".join(f"c{i}" for i in range(10)),
        # an untrained model's top labels are near ties that int8 rounding may swap; the agreement gate has its own
        # test (test_quantized_model_below_the_agreement_floor_is_not_written); this one checks the scores below
        "--min-agreement",
        "0",
    )
    assert code == 0, stdout + err
    clf = Classifier(out.with_suffix(".json")).load()
    assert clf.manifest.quantization == mode and clf.manifest.output == "logits"
    reference = keras.models.load_model(keras_file)
    from core.images import decode_image

    image = decode_image(next(image_dir.glob("gen*.png")).read_bytes(), 10**7)
    batch = clf.preprocess(image)
    scores = clf.predict(batch)
    expected = np.asarray(reference(batch)).reshape(-1)
    assert scores.shape == (10,) and np.isfinite(scores).all()
    tolerance = {"none": 1e-4, "float16": 5e-2, "dynamic": 0.2, "int8": 0.3}[mode]
    assert np.max(np.abs(scores - expected)) <= tolerance * max(1.0, np.max(np.abs(expected)))
    if mode == "int8":
        detail = clf._interpreter().get_input_details()[0]
        assert detail["dtype"] == np.int8  # really full-integer: serving quantizes the input


def test_savedmodel_folder_converts(tmp_path, image_dir, capsys):
    folder = tmp_path / "saved"
    small_model(softmax=True).export(str(folder), format="tf_saved_model")
    out = tmp_path / "saved.tflite"
    code, stdout, err = run(capsys, folder, "--out", out, "--parity-dir", image_dir)
    assert code == 0, stdout + err
    assert json.loads(out.with_suffix(".json").read_text())["output"] == "probabilities"


def test_int8_without_images_is_a_clear_error(keras_file, tmp_path, capsys):
    code, _, err = run(capsys, keras_file, "--out", tmp_path / "x.tflite", "--quantize", "int8")
    assert code == 1 and "needs --representative-dir" in err


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p / "missing.h5", "model not found"),
        (lambda p: (p / "broken.h5").write_bytes(b"this is not HDF5") and p / "broken.h5", "cannot load"),
        (lambda p: (p / "broken.keras").write_bytes(b"PK\x03\x04 truncated zip") and p / "broken.keras", "cannot load"),
        (lambda p: (p / "model.onnx").write_bytes(b"x") and p / "model.onnx", "unsupported model file"),
        (lambda p: p, "not a SavedModel"),
    ],
)
def test_broken_inputs_give_one_clear_line(tmp_path, capsys, make, message):
    code, _, err = run(capsys, make(tmp_path), "--out", tmp_path / "x.tflite")
    assert code == 1
    assert message in err and "Traceback" not in err


def test_several_inputs_are_refused(tmp_path, capsys):
    a, b = keras.Input((32, 32, 3)), keras.Input((32, 32, 3))
    model = keras.Model([a, b], keras.layers.Dense(2)(keras.layers.Flatten()(keras.layers.Add()([a, b]))))
    model.save(tmp_path / "two.keras")
    code, _, err = run(capsys, tmp_path / "two.keras", "--out", tmp_path / "two.tflite")
    assert code == 1 and "2 inputs" in err


def test_label_count_mismatch_is_refused(keras_file, tmp_path, capsys):
    code, _, err = run(capsys, keras_file, "--out", tmp_path / "x.tflite", "--labels", "a,b,c")
    assert code == 1 and "outputs 10 scores but 3 labels" in err


def test_cli_exits_nonzero_when_float32_parity_fails_and_keeps_the_served_model(keras_file, tmp_path, capsys):
    """A tolerance of 0 cannot be met by a real conversion on random inputs: the command must fail (exit 2) and
    leave the model already at --out, and its manifest, as they were."""
    served, manifest = tmp_path / "x.tflite", tmp_path / "x.json"
    served.write_bytes(b"the model being served")
    manifest.write_text('{"name": "served"}')
    code, out, err = run(capsys, keras_file, "--out", served, "--tolerance", "0")
    assert code == 2, out + err
    assert "differs from Keras" in err and "was not written" in err
    assert served.read_bytes() == b"the model being served" and manifest.read_text() == '{"name": "served"}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.tflite"]  # no staging leftovers


def test_quantized_model_below_the_agreement_floor_is_not_written(keras_file, image_dir, tmp_path, capsys):
    out = tmp_path / "q.tflite"
    code, _, err = run_int8(capsys, keras_file, out, image_dir, "--min-agreement", "1.01")
    assert code == 2 and "gives Keras' top label on only" in err
    assert not out.exists() and not out.with_suffix(".json").exists()


CUSTOM_LAYER_MODEL = """
import keras, sys

@keras.saving.register_keras_serializable(package="someone_elses")
class Mystery(keras.layers.Layer):
    def call(self, x):
        return x * 2

inputs = keras.Input((32, 32, 3))
x = Mystery()(inputs)
x = keras.layers.GlobalAveragePooling2D()(x)
keras.Model(inputs, keras.layers.Dense(10)(x)).save(sys.argv[1])
"""


def test_unknown_custom_layer_is_named_in_plain_words(tmp_path):
    """A model saved with a custom layer whose code is not importable here: one clear line, exit 1."""
    source = tmp_path / "custom.keras"
    subprocess.run(
        [sys.executable, "-c", CUSTOM_LAYER_MODEL, str(source)], check=True, capture_output=True, timeout=300
    )
    proc = run_tool("lab.convert", source, "--out", tmp_path / "custom.tflite", timeout=300)
    assert proc.returncode == 1
    assert "custom layer" in proc.stderr and "Traceback" not in proc.stderr


def test_uint8_full_integer_model_is_served(tmp_path, image_dir):
    """Full-integer models with uint8 input/output (older converters' default) are (de)quantized by serving too."""
    from core.manifest import sha256_of, write_manifest
    from lab.conversion import image_batches

    model = small_model()
    batches = image_batches(image_dir, 8, (64, 64), "xception", 0)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([b] for b in batches)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.uint8
    path = tmp_path / "u8.tflite"
    path.write_bytes(converter.convert())
    manifest = write_manifest(
        tmp_path / "u8.json",
        name="u8",
        version="1",
        model_file=path.name,
        sha256=sha256_of(path),
        labels=[f"c{i}" for i in range(10)],
        input_size=[64, 64],
        preprocessing="xception",
        output="logits",
        quantization="int8",
    )
    clf = Classifier(manifest).load()
    assert clf._interpreter().get_input_details()[0]["dtype"] == np.uint8
    scores = clf.predict(batches[0])
    expected = np.asarray(model(batches[0])).reshape(-1)
    assert scores.dtype == np.float32 and np.max(np.abs(scores - expected)) <= 0.3 * max(1.0, np.abs(expected).max())


def pre_activation_residual_model(activation="relu"):
    """Xception's middle-flow pattern: ReLU of a sum that the next residual ADD also reads unactivated."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation=activation)(inputs)
    for _ in range(4):  # the first block's activation repeats the stem's: the converter drops it
        y = keras.layers.Activation(activation)(x)
        y = keras.layers.SeparableConv2D(16, 3, padding="same")(y)
        x = keras.layers.Add()([x, y])
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.ReLU()(x))
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def op_names(model_bytes):
    from tensorflow.lite.python.schema_py_generated import BuiltinOperator
    from tensorflow.lite.tools import flatbuffer_utils

    names = {code: name for name, code in vars(BuiltinOperator).items() if not name.startswith("_")}
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    codes = [model.operatorCodes[op.opcodeIndex] for op in model.subgraphs[0].operators]
    return [names[max(code.builtinCode, code.deprecatedBuiltinCode)] for code in codes]


def loaded(model_bytes):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model_bytes)
    interpreter.allocate_tensors()
    return interpreter


def delegate_partitions(model_bytes):
    """How many pieces XNNPACK took the graph in (LiteRT lists each as one DELEGATE node)."""
    return sum(op["op_name"] == "DELEGATE" for op in loaded(model_bytes)._get_ops_details())


def keras_source(model):
    from lab.source_model import SourceModel

    source = SourceModel.__new__(SourceModel)  # an in-memory model: no file to load
    source.keras_model = model
    return source


def assert_int8_rewrite_keeps_scores(model, plain, rewritten, batches):
    """A rewrite that only drops an int8 rounding moves scores by a few quantization steps at most, keeps the
    labels, and stays at least as close to Keras."""
    from lab.parity import run_tflite

    before, after = run_tflite(plain, batches), run_tflite(rewritten, batches)
    step = loaded(rewritten).get_output_details()[0]["quantization"][0]
    assert np.max(np.abs(before - after)) <= 3 * step
    assert np.mean(before.argmax(1) == after.argmax(1)) >= 0.9
    keras_scores = np.stack([np.asarray(model(b)).reshape(-1) for b in batches])
    assert np.abs(after - keras_scores).mean() <= np.abs(before - keras_scores).mean() * 1.1


@pytest.mark.parametrize("activation", ["relu", "relu6"])
def test_int8_standalone_activations_are_fused_so_xnnpack_runs_the_whole_graph(image_dir, activation):
    """The converter leaves these activations standalone; int8 ones split XNNPACK's graph (see
    lab/activation_fusion.py). Fused, the graph is one partition and the scores stay within a step."""
    from lab.activation_fusion import fuse_activations_into_adds
    from lab.conversion import convert, image_batches

    model = pre_activation_residual_model(activation)
    batches = image_batches(image_dir, 12, (32, 32), "xception", 0)
    plain = convert(keras_source(model), "int8", batches)
    standalone = op_names(plain).count(activation.upper())
    assert standalone == 3 and delegate_partitions(plain) > 1  # the premise: converter output is split

    fused, count = fuse_activations_into_adds(plain)
    assert count == 3
    assert activation.upper() not in op_names(fused)
    assert op_names(fused).count("ADD") == op_names(plain).count("ADD") + 3  # the raw sum stays for the next ADD
    assert delegate_partitions(fused) == 1
    assert_int8_rewrite_keeps_scores(model, plain, fused, batches)  # one rounding fewer per block


def test_fusion_keeps_float_results_and_leaves_models_without_the_pattern_alone(image_dir):
    from lab.activation_fusion import fuse_activations_into_adds
    from lab.conversion import convert, image_batches
    from lab.parity import run_tflite

    batches = image_batches(image_dir, 4, (32, 32), "xception", 0)
    plain = convert(keras_source(pre_activation_residual_model()), "none", None)
    fused, count = fuse_activations_into_adds(plain)
    assert count == 3 and "RELU" not in op_names(fused)
    assert np.max(np.abs(run_tflite(plain, batches) - run_tflite(fused, batches))) <= 1e-5

    simple = convert(keras_source(small_model()), "none", None)  # its ReLUs are fused into convolutions already
    assert fuse_activations_into_adds(simple) == (simple, 0)


def test_cli_fuses_int8_activations_and_says_so(tmp_path, image_dir, capsys):
    source = tmp_path / "residual.keras"
    pre_activation_residual_model().save(source)
    out = tmp_path / "residual.tflite"
    code, stdout, err = run_int8(capsys, source, out, image_dir, "--labels", ",".join(f"c{i}" for i in range(10)))
    assert code == 0, stdout + err
    assert "fused 3 standalone ReLU(s)" in stdout and "folded 0 average pool(s)" in stdout
    assert "RELU" not in op_names(out.read_bytes())
    assert delegate_partitions(out.read_bytes()) == 1
    assert json.loads(out.with_suffix(".json").read_text())["parity"]["top1_agreement"] >= 0.9


def downsampling_shortcut_model():
    """The residual downsampling of lab/train.py's scratch network: AveragePooling2D(2), then a 1x1 convolution."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    for filters in (16, 32):
        y = keras.layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu")(x)
        shortcut = keras.layers.AveragePooling2D(2, padding="same")(x)
        shortcut = keras.layers.BatchNormalization()(keras.layers.Conv2D(filters, 1, use_bias=False)(shortcut))
        x = keras.layers.ReLU()(keras.layers.Add()([y, shortcut]))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def test_int8_average_pools_fold_into_their_convolutions(image_dir):
    from lab.conversion import convert, image_batches
    from lab.pool_folding import fold_average_pools

    model = downsampling_shortcut_model()
    batches = image_batches(image_dir, 12, (32, 32), "xception", 0)
    plain = convert(keras_source(model), "int8", batches)
    assert op_names(plain).count("AVERAGE_POOL_2D") == 2 and delegate_partitions(plain) > 1

    folded, count = fold_average_pools(plain)
    assert count == 2 and "AVERAGE_POOL_2D" not in op_names(folded)
    assert op_names(folded).count("CONV_2D") == op_names(plain).count("CONV_2D")
    assert delegate_partitions(folded) == 1
    assert_int8_rewrite_keeps_scores(model, plain, folded, batches)  # the average is not rounded to int8


def test_folding_is_exact_in_float_and_skips_pools_it_cannot_fold(image_dir):
    from lab.conversion import convert, image_batches
    from lab.parity import run_tflite
    from lab.pool_folding import fold_average_pools

    batches = image_batches(image_dir, 4, (32, 32), "xception", 0)
    plain = convert(keras_source(downsampling_shortcut_model()), "none", None)
    folded, count = fold_average_pools(plain)
    assert count == 2
    assert np.max(np.abs(run_tflite(plain, batches) - run_tflite(folded, batches))) <= 1e-5

    keras.utils.set_random_seed(3)
    layers = keras.layers
    inputs = keras.Input((30, 30, 3))

    def features(kernel=3):  # a branch of its own, so the converter cannot merge the branches' pools
        return layers.Conv2D(8, kernel)(inputs)

    pooled_twice = layers.AveragePooling2D(2)(features())
    branches = [
        layers.Conv2D(4, 1)(layers.AveragePooling2D(2)(features())),  # the foldable one
        layers.Conv2D(4, 1)(layers.AveragePooling2D(2, padding="same")(features(4))),  # 27x27: padded windows
        layers.Conv2D(4, 1)(layers.AveragePooling2D(3, strides=2)(features())),  # overlapping windows
        layers.Conv2D(4, 3)(layers.AveragePooling2D(2)(features())),  # a 3x3 convolution reads it
        layers.Conv2D(4, 1)(pooled_twice),
        pooled_twice,  # two readers
    ]
    pooled = layers.Concatenate()([layers.GlobalAveragePooling2D()(b) for b in branches])
    model = keras.Model(inputs, layers.Dense(10)(pooled))
    plain = convert(keras_source(model), "none", None)
    assert op_names(plain).count("AVERAGE_POOL_2D") == 5
    folded, count = fold_average_pools(plain)
    assert count == 1 and op_names(folded).count("AVERAGE_POOL_2D") == 4
    batches = [np.random.default_rng(0).uniform(-1, 1, (1, 30, 30, 3)).astype("float32")]
    assert np.max(np.abs(run_tflite(plain, batches) - run_tflite(folded, batches))) <= 1e-5
