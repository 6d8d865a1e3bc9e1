"""Convert a Keras model to TF Lite, check it against Keras, and write its manifest.

    python model/convert.py xception_v4_large_08_0.894.h5 --out model/clothing-model.tflite \
        --preprocessing xception --quantize none --parity-dir ../shared/data/clothing-dataset-small/validation

Input: a legacy ``.h5`` (as the book saved it), a ``.keras`` file, or a SavedModel folder.
``--quantize``: ``none`` (float32), ``float16``, ``dynamic`` (int8 weights, float activations) or ``int8``
(full-integer, int8 input/output, calibrated on ``--representative-dir`` images; then the ops XNNPACK runs only
in float are rewritten into ones it runs in int8: model/activation_fusion.py, model/pool_folding.py).

After converting, Keras and TF Lite classify the same images (``--parity-dir``, else the representative
images, else random inputs) and a table shows the max absolute difference and top-1 agreement. A
``none`` conversion must agree within ``--tolerance`` (default 1e-4, relative to the largest output
magnitude), a quantized one must give Keras' top label on ``--min-agreement`` of the images (default 90%),
or the command exits 2 and leaves ``--out`` as it was. Only a model that passed is moved into place, with its
manifest (labels, input size, preprocessing, output kind, sha256, runtimes it loads in) beside it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from model.activation_fusion import fuse_activations_into_adds
from model.labels import CLOTHING_LABELS
from model.pool_folding import fold_average_pools

QUANTIZE_MODES = ("none", "float16", "dynamic", "int8")
DEFAULT_TOLERANCE = 1e-4
DEFAULT_MIN_AGREEMENT = 0.9
LEGACY_CHECK = Path(__file__).resolve().parent / "legacy_check.py"


class ConversionError(Exception):
    """A problem the user can fix; printed as one plain line."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", type=Path, help="Keras model: .h5, .keras, or a SavedModel folder")
    p.add_argument("--out", type=Path, help="output .tflite (default: next to the source)")
    p.add_argument("--quantize", choices=QUANTIZE_MODES, default="none")
    p.add_argument(
        "--labels", help="comma-separated labels, or a file with one per line (default: the book's ten clothing labels)"
    )
    p.add_argument("--preprocessing", default="xception", help="keras_image_helper mode the model expects")
    p.add_argument(
        "--output-kind",
        choices=("auto", "logits", "probabilities"),
        default="auto",
        help="what the model outputs (auto: probabilities if outputs sum to 1)",
    )
    p.add_argument("--representative-dir", type=Path, help="image folder for int8 calibration")
    p.add_argument("--representative-count", type=int, default=200)
    p.add_argument("--parity-dir", type=Path, help="image folder for the Keras/TF Lite parity check")
    p.add_argument("--parity-count", type=int, default=64)
    p.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="float32: largest relative difference from Keras allowed",
    )
    p.add_argument(
        "--min-agreement",
        type=float,
        default=DEFAULT_MIN_AGREEMENT,
        help="quantized modes: least share of parity images whose top label matches Keras",
    )
    p.add_argument("--name", help="model name in the manifest (default: the output file's stem)")
    p.add_argument("--version", default="1.0.0", help="model version in the manifest")
    p.add_argument(
        "--legacy-python",
        type=Path,
        help="a Python with tflite-runtime 2.14 installed: check the model loads there too",
    )
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def say(message: str) -> None:
    print(message, flush=True)


# -- loading ------------------------------------------------------------------------------------------
class SourceModel:
    """A Keras model or a SavedModel signature, behind one ``predict(batch)``."""

    def __init__(self, path: Path):
        self.path = path
        if not path.exists():
            raise ConversionError(f"model not found: {path}")
        self.keras_model = None
        try:
            if path.is_dir():
                shape = self._load_saved_model(path)
            elif path.suffix.lower() in (".h5", ".hdf5", ".keras"):
                shape = self._load_keras(path)
            else:
                raise ConversionError(f"unsupported model file '{path.name}': use .h5, .keras or a SavedModel folder")
        except ConversionError:
            raise
        except (OSError, ValueError, TypeError, KeyError) as exc:
            hint = "the file is damaged or not a Keras model"
            if "Unknown layer" in str(exc) or "custom" in str(exc).lower():
                hint = "it uses a layer Keras does not know (a custom layer): load and re-save it with its code"
            raise ConversionError(f"cannot load {path}: {hint} ({_first_line(exc)})") from None
        if len(shape) != 4 or shape[1] is None or shape[2] is None or shape[3] != 3:
            raise ConversionError(f"{path} takes input {tuple(shape)}; expected (batch, height, width, 3)")
        self.input_size = (int(shape[1]), int(shape[2]))

    def _load_saved_model(self, path: Path):
        """The serving signature of a SavedModel folder; its input shape."""
        import tensorflow as tf

        if not (path / "saved_model.pb").exists():
            raise ConversionError(f"{path} is a folder but not a SavedModel (no saved_model.pb)")
        self._signature = tf.saved_model.load(str(path)).signatures.get("serving_default")
        if self._signature is None:
            raise ConversionError(f"{path} has no 'serving_default' signature")
        specs = self._signature.structured_input_signature[1]
        if len(specs) != 1:
            raise ConversionError(f"{path} has {len(specs)} inputs; an image classifier needs one")
        self._input_name, spec = next(iter(specs.items()))
        return spec.shape

    def _load_keras(self, path: Path):
        """A Keras model from .h5/.keras with one input and one output; its input shape."""
        import keras

        model = self.keras_model = keras.models.load_model(str(path), compile=False)
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ConversionError(
                f"{path} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; an image classifier "
                "needs exactly one of each"
            )
        return model.inputs[0].shape

    def predict(self, batch):
        import numpy as np

        if self.keras_model is not None:
            return np.asarray(self.keras_model(batch, training=False))
        out = self._signature(**{self._input_name: batch})
        if len(out) != 1:
            raise ConversionError(f"{self.path} has {len(out)} outputs; an image classifier needs one")
        return np.asarray(next(iter(out.values())))

    def converter(self):
        import tensorflow as tf

        if self.keras_model is not None:
            return tf.lite.TFLiteConverter.from_keras_model(self.keras_model)
        return tf.lite.TFLiteConverter.from_saved_model(str(self.path))


# -- images ---------------------------------------------------------------------------------------------
def image_batches(folder: Path | None, count: int, size, preprocessing: str, seed: int):
    """Up to ``count`` preprocessed images (1, H, W, 3) from ``folder`` (recursive), spread over it."""
    import numpy as np
    from keras_image_helper import create_preprocessor
    from PIL import Image

    from core.images import IMAGE_SUFFIXES, upright

    if folder is None:
        return []
    if not folder.is_dir():
        raise ConversionError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConversionError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    rng = np.random.default_rng(seed)
    chosen = [files[i] for i in sorted(rng.permutation(len(files))[:count])]
    preprocessor = create_preprocessor(preprocessing, target_size=(size[1], size[0]))
    batches = []
    for path in chosen:  # turned upright as serving turns them (core/images.py)
        with Image.open(path) as img:
            batches.append(preprocessor.convert_to_tensor(upright(img)).astype("float32"))
    return batches


def random_batches(count: int, size, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, (1, size[0], size[1], 3)).astype("float32") for _ in range(count)]


# -- conversion ---------------------------------------------------------------------------------------------
def convert(source: SourceModel, mode: str, representative) -> bytes:
    import tensorflow as tf

    with contextlib.redirect_stdout(io.StringIO()):  # Keras' export prints its whole signature
        converter = source.converter()
    if mode == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "int8":
        if not representative:
            raise ConversionError("--quantize int8 needs --representative-dir: a folder of typical images")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([batch] for batch in representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return converter.convert()
    except Exception as exc:  # the converter raises many types; its first line names the op
        raise ConversionError(
            f"TF Lite cannot convert this model: {_first_line(exc)} "
            "(an op without a TF Lite builtin needs a different layer)"
        ) from None


def run_tflite(model_bytes: bytes, batches):
    """TF Lite outputs for each batch, (de)quantized exactly as serving does."""
    import numpy as np

    from core.interpreter import find_runtime
    from core.model import run_interpreter

    _, Interpreter = find_runtime()
    interpreter = Interpreter(model_content=model_bytes)
    interpreter.allocate_tensors()
    return np.stack([run_interpreter(interpreter, batch) for batch in batches])


def parity(source: SourceModel, model_bytes: bytes, batches) -> dict:
    import numpy as np

    expected = np.stack([source.predict(b).reshape(-1) for b in batches])
    actual = run_tflite(model_bytes, batches)
    max_abs = float(np.max(np.abs(expected - actual)))
    scale = float(max(1.0, np.max(np.abs(expected))))
    return {
        "images": len(batches),
        "max_abs_diff": max_abs,
        "relative_diff": max_abs / scale,
        "top1_agreement": float(np.mean(expected.argmax(1) == actual.argmax(1))),
        "expected": expected,
        "actual": actual,
    }


def detect_output_kind(outputs) -> str:
    import numpy as np

    sums_to_one = np.allclose(outputs.sum(axis=1), 1.0, atol=1e-3)
    return "probabilities" if sums_to_one and outputs.min() >= 0 else "logits"


def legacy_runtime_ok(python: Path, model_path: Path, batches, reference) -> tuple[bool, str]:
    """Whether tflite-runtime 2.14 (in another Python) loads and runs the model; its agreement with ``reference``
    (this runtime's outputs for the same inputs) is reported."""
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "inputs.npy", np.concatenate(batches))
        proc = subprocess.run(
            [
                str(python),
                str(LEGACY_CHECK),
                str(model_path),
                str(Path(tmp) / "inputs.npy"),
                str(Path(tmp) / "outputs.npy"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0:
            return False, (proc.stderr.strip().splitlines() or ["failed"])[-1]
        got = np.load(Path(tmp) / "outputs.npy")
    agree = float(np.mean(got.argmax(1) == reference.argmax(1)))
    diff = float(np.max(np.abs(got - reference)))
    return True, f"top-1 agreement with {_runtime_name()} {agree:.3f}, max abs diff {diff:.3g}"


def _runtime_name() -> str:
    from core.interpreter import find_runtime

    return find_runtime()[0]


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:300]


def read_labels(value: str | None) -> list:
    if not value:
        return list(CLOTHING_LABELS)
    path = Path(value)
    if path.is_file():
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [label.strip() for label in value.split(",") if label.strip()]


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        return run(args)
    except ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def run(args) -> int:
    out = args.out or args.source.with_suffix(".tflite")
    if out.suffix != ".tflite":
        raise ConversionError(f"--out must end in .tflite (got {out})")
    say(f"loading {args.source} ...")
    source = SourceModel(args.source)
    labels = read_labels(args.labels)
    say(f"  input {source.input_size[0]}x{source.input_size[1]}x3, {len(labels)} labels")
    representative, check_images = sample_images(args, source.input_size)

    model_bytes = convert_for_serving(source, args.quantize, representative)
    result = parity(source, model_bytes, check_images)
    outputs, tflite_outputs = result.pop("expected"), result.pop("actual")
    if outputs.shape[1] != len(labels):
        raise ConversionError(
            f"the model outputs {outputs.shape[1]} scores but {len(labels)} labels were given (--labels)"
        )
    say("parity, Keras vs TF Lite:")
    say(f"  {'images':>8} {'max abs diff':>14} {'relative':>10} {'top-1 agree':>12}")
    say(
        f"  {result['images']:>8} {result['max_abs_diff']:>14.3g} {result['relative_diff']:>10.3g} "
        f"{result['top1_agreement']:>12.3f}"
    )
    failure = parity_failure(args, result)
    if failure:  # the served model is left as it was
        print(f"error: {failure}; {out} was not written", file=sys.stderr)
        return 2
    manifest = {
        "name": args.name or out.stem,
        "version": args.version,
        "model_file": out.name,
        "labels": labels,
        "input_size": list(source.input_size),
        "preprocessing": args.preprocessing,
        "output": detect_output_kind(outputs) if args.output_kind == "auto" else args.output_kind,
        "quantization": args.quantize,
        "parity": {k: round(v, 8) for k, v in result.items()},
    }
    install(out, model_bytes, manifest, args.legacy_python, check_images, tflite_outputs)
    say(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


def sample_images(args, size) -> tuple[list, list]:
    """The calibration images (int8) and the parity images (else the calibration ones, else random inputs)."""
    representative = image_batches(
        args.representative_dir, args.representative_count, size, args.preprocessing, args.seed
    )
    check_images = (
        image_batches(args.parity_dir, args.parity_count, size, args.preprocessing, args.seed)
        or representative[: args.parity_count]
    )
    if not check_images:
        say("  no --parity-dir given: checking parity on random inputs")
        check_images = random_batches(min(args.parity_count, 8), size, args.seed)
    return representative, check_images


def convert_for_serving(source: SourceModel, mode: str, representative) -> bytes:
    """The TF Lite model; an int8 one with the ops XNNPACK runs only in float rewritten into ones it runs."""
    started = time.perf_counter()
    say(f"converting (quantize={mode}) ...")
    model_bytes = convert(source, mode, representative)
    say(f"  {len(model_bytes) / 1e6:.2f} MB in {time.perf_counter() - started:.1f}s")
    if mode == "int8":
        model_bytes, fused = fuse_activations_into_adds(model_bytes)
        model_bytes, folded = fold_average_pools(model_bytes)
        if fused or folded:
            say(
                f"  for XNNPACK: fused {fused} standalone ReLU(s) into their ADDs, folded {folded} average "
                "pool(s) into their 1x1 convolutions"
            )
    return model_bytes


def install(out: Path, model_bytes: bytes, manifest: dict, legacy_python, check_images, tflite_outputs) -> None:
    """Stage the model and its manifest beside ``out``, check the book's runtime, then move both into place."""
    from core.manifest import sha256_of, write_manifest

    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".convert-") as tmp:
        staged = Path(tmp) / out.name
        staged.write_bytes(model_bytes)
        runtimes = {"ai_edge_litert": True, "tensorflow": True}
        if legacy_python:
            ok, detail = legacy_runtime_ok(legacy_python, staged, check_images, tflite_outputs)
            runtimes["tflite_runtime"] = ok
            say(f"tflite-runtime 2.14: {'loads and runs' if ok else 'NOT compatible'} ({detail})")
        write_manifest(staged.with_suffix(".json"), **manifest, sha256=sha256_of(staged), runtimes=runtimes)
        # Every check passed: move the pair into place (the model first; a manifest names its model's hash).
        os.replace(staged, out)
        os.replace(staged.with_suffix(".json"), out.with_suffix(".json"))


def parity_failure(args, result: dict) -> str | None:
    """Why the converted model must not be served, or None: float32 must match Keras within the tolerance; a
    quantized model must give Keras' top label on at least --min-agreement of the images."""
    if args.quantize == "none" and result["relative_diff"] > args.tolerance:
        return (
            f"float32 TF Lite differs from Keras by {result['relative_diff']:.3g} (relative), more than the "
            f"tolerance {args.tolerance:g}"
        )
    if args.quantize != "none" and result["top1_agreement"] < args.min_agreement:
        return (
            f"the {args.quantize} model gives Keras' top label on only {result['top1_agreement']:.1%} of "
            f"{result['images']} images (--min-agreement {args.min_agreement:.0%})"
        )
    return None


if __name__ == "__main__":
    sys.exit(main())
