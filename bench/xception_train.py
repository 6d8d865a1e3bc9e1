"""Train the book's model shape (Xception at 299x299, 10 clothing labels) from scratch, so that the
quantization benchmark measures accuracy on a trained network instead of random weights.

It needs a GPU (one H100: minutes; two CPU cores: days). There are no ImageNet weights to start from (nothing
can be downloaded here), so the network is less accurate than the book's transfer-learned one; what it is for
is the difference between float32 and quantized versions of one trained network (bench/quantization.py).

    # 1. here: pack the dataset as the serving code resizes it (299x299 WebP, ~38 MB: fits a GPU machine's upload)
    python bench/xception_train.py pack --data-dir ../shared/data/clothing-dataset-small --out .xdata/clothing299.npz
    # 2. on the GPU machine, with Keras 3 on PyTorch (the JAX backend hung at its first step there):
    KERAS_BACKEND=torch python bench/xception_train.py train --pack .xdata/clothing299.npz --out $OUT
    # 3. here: rebuild the float32 Keras model from the returned float16 weight parts
    python bench/xception_train.py restore --weights-dir $OUT --out bench/results/tmp/xception-trained.keras

Weights travel as float16 in parts of at most 15 MB (a GPU machine returns files of 16 MB at most); the
restored float32 model is those rounded weights, and every comparison starts from it.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

SIZE = 299
NUM_CLASSES = 10
PART_BYTES = 15 * 1024 * 1024


def build_network(keras, dropout: float = 0.3):
    """Xception (no top, average pooling) + dropout + a 10-way dense layer: the book's model, logits out."""
    base = keras.applications.Xception(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3), pooling="avg")
    x = keras.layers.Dropout(dropout)(base.output)
    logits = keras.layers.Dense(NUM_CLASSES, name="logits", dtype="float32")(x)
    return keras.Model(base.input, logits, name="xception_clothing")


# -- pack -------------------------------------------------------------------------------------------------------


def pack(args) -> int:
    from PIL import Image

    from lab.dataset import list_split, load_pixels
    from lab.labels import CLOTHING_LABELS

    arrays: dict[str, Any] = {}
    for split in ("train", "validation"):
        paths, ids = list_split(Path(args.data_dir) / split, list(CLOTHING_LABELS))
        blobs = []
        for pixels in load_pixels(paths, SIZE):
            buf = io.BytesIO()
            Image.fromarray(pixels).save(buf, "WEBP", quality=args.quality, method=4)
            blobs.append(np.frombuffer(buf.getvalue(), np.uint8))
        arrays[f"{split}_bytes"] = np.concatenate(blobs)
        arrays[f"{split}_lengths"] = np.array([len(b) for b in blobs])
        arrays[f"{split}_labels"] = ids
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez(args.out, **arrays)
    print(
        f"packed {len(arrays['train_lengths'])} train / {len(arrays['validation_lengths'])} validation images "
        f"into {args.out} ({Path(args.out).stat().st_size / 1e6:.1f} MB)"
    )
    return 0


def unpack(path, split: str):
    from PIL import Image

    data = np.load(path)
    blob, lengths = data[f"{split}_bytes"], data[f"{split}_lengths"]
    ends = np.cumsum(lengths)
    pixels = np.stack(
        [
            np.asarray(Image.open(io.BytesIO(blob[e - n : e].tobytes())).convert("RGB"))
            for n, e in zip(lengths, ends, strict=False)
        ]
    )
    return pixels, data[f"{split}_labels"]


# -- train ------------------------------------------------------------------------------------------------------
def save_weights(weights: list[np.ndarray], out: Path) -> None:
    """The weights as float16, in parts small enough to commit."""
    if not weights:
        raise SystemExit("no epoch finished: nothing to save")
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, *[w.astype(np.float16) for w in weights])
    blob = buf.getvalue()
    for part, start in enumerate(range(0, len(blob), PART_BYTES)):
        (out / f"xception-weights.part{part}").write_bytes(blob[start : start + PART_BYTES])


def mixup_batches(keras: Any, x_train, y_train, args):
    """The training batches: a keras PyDataset (made here because keras is imported late)."""

    class MixupBatches(keras.utils.PyDataset):
        """Shuffled batches of raw pixels (0-255, float32), blended pairwise with mixup."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.epoch = 0
            self.order = np.random.default_rng([args.seed, 0]).permutation(len(x_train))

        def __len__(self):
            return len(x_train) // args.batch_size

        def __getitem__(self, i):
            rng = np.random.default_rng([args.seed, self.epoch, i])  # thread-safe: one generator per batch
            idx = self.order[i * args.batch_size : (i + 1) * args.batch_size]
            x = x_train[idx].astype(np.float32)
            y = np.eye(NUM_CLASSES, dtype=np.float32)[y_train[idx]]
            if args.mixup > 0:
                lam = rng.beta(args.mixup, args.mixup, len(idx)).astype(np.float32)
                perm = rng.permutation(len(idx))
                x = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[perm]
                y = lam[:, None] * y + (1 - lam[:, None]) * y[perm]
            return x, y

        def on_epoch_end(self):
            self.epoch += 1
            self.order = np.random.default_rng([args.seed, self.epoch]).permutation(len(x_train))

    return MixupBatches(workers=args.workers)


def train(args) -> int:
    import keras

    from lab.augment import augmentation

    keras.utils.set_random_seed(args.seed)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    started = time.time()
    x_train, y_train = unpack(args.pack, "train")
    x_val, y_val = unpack(args.pack, "validation")
    if args.limit:  # smoke runs
        x_train, y_train, x_val, y_val = (part[: args.limit] for part in (x_train, y_train, x_val, y_val))
    print(
        f"unpacked {len(x_train)} + {len(x_val)} images in {time.time() - started:.1f}s "
        f"(backend {keras.backend.backend()})",
        flush=True,
    )

    layers = keras.layers
    augment = augmentation(args.seed, dtype="float32")  # flip, rotation, zoom, shift, contrast, brightness
    net = build_network(keras, args.dropout)
    inputs = keras.Input((SIZE, SIZE, 3), dtype="float32")
    scaled = layers.Rescaling(1 / 127.5, offset=-1.0, dtype="float32")(  # keras_image_helper's 'xception' mode
        layers.Lambda(lambda t: keras.ops.clip(t, 0.0, 255.0), dtype="float32")(augment(inputs))
    )
    trainer = keras.Model(inputs, net(scaled))

    steps = len(x_train) // args.batch_size
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=args.lr / 100,
        decay_steps=steps * (args.epochs - args.warmup_epochs),
        warmup_target=args.lr,
        warmup_steps=steps * args.warmup_epochs,
        alpha=0.01,
    )
    trainer.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=args.weight_decay, use_ema=True, ema_momentum=args.ema),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        metrics=["accuracy"],
    )

    class KeepBest(keras.callbacks.Callback):
        """Keeps the network's weights (the moving average, swapped in at epoch end) of the best epoch."""

        best, epoch = -1.0, 0
        weights: list[np.ndarray] = []

        def on_epoch_end(self, epoch, logs=None):
            if logs["val_accuracy"] > self.best:
                self.best, self.weights, self.epoch = logs["val_accuracy"], net.get_weights(), epoch + 1
            if time.time() - started > args.time_budget:
                print(f"time budget of {args.time_budget}s reached after epoch {epoch + 1}", flush=True)
                self.model.stop_training = True

    class StepLog(keras.callbacks.Callback):
        """A progress line every --log-every batches."""

        def on_train_batch_end(self, batch, logs=None):
            if (batch + 1) % args.log_every == 0:
                print(f"  batch {batch + 1}: {time.time() - started:.1f}s since start", flush=True)

    keep = KeepBest()
    val = (x_val.astype(np.float32), np.eye(NUM_CLASSES, dtype=np.float32)[y_val])
    history = trainer.fit(
        mixup_batches(keras, x_train, y_train, args),
        validation_data=val,
        epochs=args.epochs,
        verbose=2,
        callbacks=[keras.callbacks.SwapEMAWeights(swap_on_epoch=True), keep] + ([StepLog()] if args.log_every else []),
    )

    out = Path(args.out)
    save_weights(keep.weights, out)
    summary = {
        "best_epoch": keep.epoch,
        "val_accuracy": keep.best,
        "epochs_run": len(history.history["loss"]),
        "train_seconds": round(time.time() - started, 1),
        "backend": keras.backend.backend(),
        "history": {k: [round(float(v), 4) for v in vs] for k, vs in history.history.items()},
        "args": vars(args),
    }
    (out / "xception-train.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: summary[k] for k in ("best_epoch", "val_accuracy", "epochs_run", "train_seconds")}))
    return 0


# -- restore ----------------------------------------------------------------------------------------------------


def restore(args) -> int:
    import keras

    parts = sorted(Path(args.weights_dir).glob("xception-weights.part*"), key=lambda p: int(p.suffix[5:]))
    if not parts:
        sys.exit(f"error: no xception-weights.part* files in {args.weights_dir}")
    weights = np.load(io.BytesIO(b"".join(p.read_bytes() for p in parts)))
    net = build_network(keras)
    net.set_weights([weights[f"arr_{i}"].astype(np.float32) for i in range(len(weights.files))])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    net.save(args.out)
    print(f"restored {len(weights.files)} weight arrays into {args.out}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    pk = sub.add_parser("pack", help="dataset folder -> one .npz of 299x299 WebP images")
    pk.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "clothing-dataset-small"))
    pk.add_argument("--out", default=".xdata/clothing299.npz")
    pk.add_argument("--quality", type=int, default=75, help="WebP quality (75: ~38 MB for the whole dataset)")
    tr = sub.add_parser("train", help="train on a pack (GPU)")
    tr.add_argument("--pack", default=".xdata/clothing299.npz")
    tr.add_argument("--out", required=True)
    tr.add_argument("--epochs", type=int, default=100)
    tr.add_argument("--warmup-epochs", type=int, default=5)
    tr.add_argument("--batch-size", type=int, default=64)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--weight-decay", type=float, default=5e-2)
    tr.add_argument("--dropout", type=float, default=0.3)
    tr.add_argument("--mixup", type=float, default=0.2)
    tr.add_argument("--ema", type=float, default=0.995)
    tr.add_argument("--seed", type=int, default=42)
    tr.add_argument("--workers", type=int, default=4, help="threads that assemble batches")
    tr.add_argument("--mixed-precision", type=int, default=1, help="1: bfloat16 compute (GPU), 0: float32")
    tr.add_argument("--log-every", type=int, default=0, help="print progress every N batches")
    tr.add_argument("--limit", type=int, default=0, help="use only the first N images of each split (smoke runs)")
    tr.add_argument("--time-budget", type=float, default=480, help="stop after the epoch that passes this (s)")
    rs = sub.add_parser("restore", help="float16 weight parts -> float32 .keras model")
    rs.add_argument("--weights-dir", required=True)
    rs.add_argument("--out", default=str(ROOT / "bench" / "results" / "tmp" / "xception-trained.keras"))
    args = p.parse_args(argv)
    return {"pack": pack, "train": train, "restore": restore}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
