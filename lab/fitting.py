"""The fitting steps of a run once its network and batches exist: seeding, the optimizer and loss, the epochs with
their history and checkpoints, and the kept model saved for lab.convert."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

from lab.dataset import xception_scale
from lab.photos import Photos
from lab.recipe import Recipe


def seed_everything(seed: int) -> None:
    import keras

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)


def compile_model(model: Any, recipe: Recipe, steps: int) -> None:
    """AdamW on a warm-up then cosine schedule, label-smoothed cross-entropy on logits, a weight average."""
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=recipe.lr / 100,
        decay_steps=max(1, steps * (recipe.epochs - recipe.warmup_epochs)),
        warmup_target=recipe.lr,
        warmup_steps=steps * recipe.warmup_epochs,
        alpha=0.01,
    )
    optimizer = keras.optimizers.AdamW(
        schedule, weight_decay=recipe.weight_decay, use_ema=recipe.ema > 0, ema_momentum=recipe.ema or 0.99
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=recipe.label_smoothing),
        metrics=["accuracy"],
    )


def fit(model: Any, recipe: Recipe, train_batches: Any, held_out: Any | None, backend: str) -> Any:
    """Train for the recipe's epochs, logging each to history.csv and keeping the best one when photos are held
    out; the weight average is what is evaluated and checkpointed, the raw weights what trains."""
    import keras

    callbacks = [keras.callbacks.CSVLogger(str(recipe.out / "history.csv"))]
    if held_out is not None:
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                str(recipe.out / "best.keras"), monitor="val_accuracy", mode="max", save_best_only=True, verbose=1
            )
        )
    if recipe.ema > 0:
        callbacks.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    return model.fit(
        train_batches,
        validation_data=held_out,  # None with --all-photos
        validation_batch_size=None if backend == "tensorflow" else 64,  # arrays, not tf.data, elsewhere
        epochs=recipe.epochs,
        callbacks=callbacks,
        verbose=1 if sys.stdout.isatty() else 2,  # a progress bar on a terminal, one line per epoch in a log
    )


def keep_model(model: Any, recipe: Recipe, photos: Photos, history: Any) -> tuple[int, float | None]:
    """Save the network alone as model.keras (the checkpoint carries the optimizer state, moments and weight
    average: 4x the weights); the kept epoch (from 0) and its held-out accuracy.

    With nothing held out it is the last epoch's weight average (left in the model by SwapEMAWeights at the end
    of training), checkpointed as last.keras; otherwise the best epoch's checkpoint."""
    import keras

    out = recipe.out
    if len(photos.x_val) == 0:  # --all-photos
        model.save(out / "last.keras")
        keras.saving.load_model(out / "last.keras", compile=False).save(out / "model.keras")
        return recipe.epochs - 1, None
    best = keras.saving.load_model(out / "best.keras", compile=False)
    best.save(out / "model.keras")
    if recipe.fold is not None:
        save_held_out_logits(best, photos, out)
    kept_epoch = int(np.argmax(history.history["val_accuracy"]))
    return kept_epoch, float(history.history["val_accuracy"][kept_epoch])


def save_held_out_logits(model: Any, photos: Photos, out: Path) -> None:
    """The kept model's logits on the held-out photos (float Keras), for out-of-fold accuracy and calibration."""
    logits = model.predict(xception_scale(photos.x_val.astype(np.float32)), batch_size=64, verbose=0)
    np.savez_compressed(out / "oof.npz", logits=logits, labels=photos.y_val, paths=np.asarray(photos.val_paths))
