"""Training batches without tf.data, for Keras' PyTorch backend (a GPU machine without TensorFlow): the same
augmentation layers as the tf.data pipeline in lab/train.py, applied to each shuffled batch on the backend's own
device, so a GPU augments its own batches and TensorFlow need not be installed."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from lab.dataset import xception_scale


class AugmentedBatches(keras.utils.PyDataset):
    """Shuffled batches of uint8 photos, augmented, scaled as keras_image_helper's 'xception' mode
    (x / 127.5 - 1), with one-hot labels (mixed up when ``mixup`` > 0). The last partial batch is dropped and the
    order reshuffled every epoch, as the tf.data pipeline does."""

    def __init__(
        self,
        pixels: np.ndarray,
        label_ids: np.ndarray,
        num_classes: int,
        batch_size: int,
        augment: Any,
        seed: int,
        mixup: float = 0.0,
    ) -> None:
        super().__init__()  # one worker, in this thread: the device's own queue does the overlapping
        self.pixels, self.label_ids = pixels, np.asarray(label_ids)
        self.one_hot = np.eye(num_classes, dtype="float32")
        self.batch_size, self.augment, self.mixup = batch_size, augment, mixup
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(pixels))

    def __len__(self) -> int:
        return len(self.pixels) // self.batch_size

    def __getitem__(self, index: int) -> tuple[Any, np.ndarray]:
        take = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        x = self.augment(keras.ops.convert_to_tensor(self.pixels[take], dtype="float32"), training=True)
        x = xception_scale(keras.ops.clip(x, 0.0, 255.0))
        y = self.one_hot[self.label_ids[take]]
        if self.mixup > 0:
            share = self.rng.beta(self.mixup, self.mixup, size=len(take)).astype("float32")
            partner = self.rng.permutation(len(take))
            x = mix(x, keras.ops.take(x, partner, axis=0), share.reshape(-1, 1, 1, 1))
            y = mix(y, y[partner], share.reshape(-1, 1))
        return x, y

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.pixels))


def mix(a: Any, b: Any, share: np.ndarray) -> Any:
    """``share`` of ``a`` and the rest of ``b`` (mixup), for arrays or backend tensors alike."""
    return share * a + (1.0 - share) * b


def scaled_held_out(x_val: np.ndarray, y_val: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """The held-out photos as validation arrays: scaled as serving scales them, labels one-hot."""
    return xception_scale(x_val.astype("float32")), np.eye(num_classes, dtype="float32")[y_val]
