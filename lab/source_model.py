"""The model lab.convert reads: a legacy ``.h5``, a ``.keras`` file or a SavedModel folder, loaded once and checked
to be a one-input image classifier, so that conversion and the parity check see it through one ``predict``. A
problem the user can fix is a ``ConversionError``: one plain line, not a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class ConversionError(Exception):
    """A problem the user can fix; printed as one plain line."""


class SourceModel:
    """A Keras model or a SavedModel signature, behind one ``predict(batch)``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            raise ConversionError(f"model not found: {path}")
        self.keras_model: Any = None
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
            raise ConversionError(f"cannot load {path}: {hint} ({first_line(exc)})") from None
        if len(shape) != 4 or shape[1] is None or shape[2] is None or shape[3] != 3:
            raise ConversionError(f"{path} takes input {tuple(shape)}; expected (batch, height, width, 3)")
        self.input_size = (int(shape[1]), int(shape[2]))

    def _load_saved_model(self, path: Path) -> Any:
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

    def _load_keras(self, path: Path) -> Any:
        """A Keras model from .h5/.keras with one input and one output; its input shape."""
        import keras

        model = self.keras_model = keras.models.load_model(str(path), compile=False)
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ConversionError(
                f"{path} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; an image classifier "
                "needs exactly one of each"
            )
        return model.inputs[0].shape

    def predict(self, batch: np.ndarray) -> np.ndarray:
        if self.keras_model is not None:
            return np.asarray(self.keras_model(batch, training=False))
        out = self._signature(**{self._input_name: batch})
        if len(out) != 1:
            raise ConversionError(f"{self.path} has {len(out)} outputs; an image classifier needs one")
        return np.asarray(next(iter(out.values())))

    def converter(self) -> Any:
        import tensorflow as tf

        if self.keras_model is not None:
            return tf.lite.TFLiteConverter.from_keras_model(self.keras_model)
        return tf.lite.TFLiteConverter.from_saved_model(str(self.path))


def first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:300]
