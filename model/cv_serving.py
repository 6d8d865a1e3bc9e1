"""A cross-validated recipe as it is served: each fold's model converted to int8 and run through the serving code
on the photos that fold held out.

    python model/cv_serving.py model/runs/cv-default --data-dir ../shared/data/clothing-dataset-small \\
        --json model/runs/cv-default/serving.json

For every ``fold*/`` of the run (``model/train.py --fold I/K`` wrote its ``model.keras`` and ``oof.npz``):

1. ``convert.py --quantize int8`` calibrated on that fold's *training* photos only (so no held-out photo is seen
   by the quantizer either), written to ``foldI/int8-rN/``; an existing conversion is reused;
2. every held-out photo decoded, prepared and classified by the serving code (``core/``), as a request would be;
   also mirrored left-right (test-time flip averaging, measured here, not served), and shrunk to half its width
   and height on a canvas of its border's colour (a small garment in a large frame: the photos the model is
   weakest on outside this dataset);
3. ``foldI/int8-rN/serving.npz``: the logits of each view, labels and paths.

The summary: accuracy per fold, mean and spread, of float Keras (``oof.npz``), of int8 as served, of int8 with
flip averaging, and of int8 on the shrunk photos. ``model/calibrate.py --served`` fits the probabilities'
temperature on the int8 logits as served.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from cli.evaluation import confusion_png, score
from model.dataset import list_split

ROOT = Path(__file__).resolve().parent.parent


def link_photos(paths, labels_of, folder: Path) -> None:
    """``folder/<label>/<split>-<name>``: symlinks, so the existing folder-based tools read a fold's photos."""
    for path in paths:
        target = folder / labels_of[path] / f"{path.parent.parent.name}-{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)


def fold_photos(data_dir: Path, labels, held_out) -> tuple[dict, list, list]:
    """All of train + validation by label, and the fold's training and held-out photos (resolved paths)."""
    labels_of = {}
    for split in ("train", "validation"):
        paths, ids = list_split(data_dir / split, labels)
        labels_of.update({p.resolve(): labels[i] for p, i in zip(paths, ids, strict=True)})
    held = {Path(p).resolve() for p in held_out}
    missing = held - labels_of.keys()
    if missing:
        sys.exit(f"error: {len(missing)} held-out photos are not under {data_dir}, e.g. {next(iter(missing))}")
    return labels_of, sorted(labels_of.keys() - held), sorted(held)


def convert_fold(fold: Path, train_view: Path, held_view: Path, out: Path, count: int, min_agreement) -> None:
    command = [
        sys.executable, str(ROOT / "model" / "convert.py"), str(fold / "model.keras"),
        "--out", str(out / "clothing-model.tflite"), "--name", "clothing-model", "--version", f"cv-{fold.name}",
        "--labels", str(fold / "labels.txt"), "--quantize", "int8",
        "--representative-dir", str(train_view), "--representative-count", str(count),
        "--parity-dir", str(held_view),
    ]  # fmt: skip
    if min_agreement is not None:
        command += ["--min-agreement", str(min_agreement)]
    subprocess.run(command, check=True, cwd=ROOT)


def small_garment(image, scale: float = 0.5):
    """The photo shrunk by ``scale`` in the middle of a canvas its own size, filled with its border's median colour."""
    from PIL import Image

    rgb = np.asarray(image.convert("RGB"))
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    canvas = Image.new("RGB", image.size, tuple(int(c) for c in np.median(border, axis=0)))
    small = image.convert("RGB").resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.LANCZOS
    )
    canvas.paste(small, ((image.width - small.width) // 2, (image.height - small.height) // 2))
    return canvas


def served_logits(manifest: Path, folder: Path, labels=None, views: bool = True) -> dict:
    """Logits of every photo of a folder-per-label split through the serving code (decode, preprocess, predict),
    with its ``labels`` (default: the manifest's) and paths; with ``views``, also mirrored left-right and shrunk."""
    from core.images import decode_image
    from core.model import Classifier

    clf = Classifier(manifest, threads=1)
    paths, truth = list_split(folder, list(clf.loaded_manifest().labels) if labels is None else labels)
    plain, mirrored, shrunk = [], [], []
    for path in paths:
        image = decode_image(path.read_bytes(), max_pixels=10**8)
        batch = clf.preprocess(image)
        plain.append(clf.predict(batch))
        if views:
            mirrored.append(clf.predict(np.ascontiguousarray(batch[:, :, ::-1, :])))
            shrunk.append(clf.predict(clf.preprocess(small_garment(image))))
    result = {"logits": np.stack(plain), "labels": truth, "paths": np.asarray([str(p.resolve()) for p in paths])}
    if views:
        result |= {"mirrored": np.stack(mirrored), "small": np.stack(shrunk)}
    return result


def measure_fold(fold: Path, data_dir: Path, count: int, min_agreement=None) -> dict:
    labels = (fold / "labels.txt").read_text().split()
    oof = np.load(fold / "oof.npz")
    out = fold / f"int8-r{count}"
    saved = out / "serving.npz"
    data = dict(np.load(saved)) if saved.exists() else {}
    if "small" not in data:  # not measured yet, or by an older version without the shrunk view
        labels_of, train, held = fold_photos(data_dir, labels, oof["paths"])
        with tempfile.TemporaryDirectory() as tmp:
            train_view, held_view = Path(tmp, "train"), Path(tmp, "held-out")
            link_photos(train, labels_of, train_view)
            link_photos(held, labels_of, held_view)
            if not (out / "clothing-model.json").exists():
                convert_fold(fold, train_view, held_view, out, count, min_agreement)
            data = served_logits(out / "clothing-model.json", held_view, labels)
        np.savez_compressed(saved, **data)
    data["float_accuracy"] = float((oof["logits"].argmax(1) == oof["labels"]).mean())
    return data


def accuracy(logits, labels) -> float:
    return float((logits.argmax(1) == labels).mean())


def summarise(folds: dict, labels: list[str]) -> dict:
    names = sorted(folds)
    rows = [
        {
            "fold": name,
            "images": len(folds[name]["labels"]),
            "float_keras": round(folds[name]["float_accuracy"], 4),
            "int8_served": round(accuracy(folds[name]["logits"], folds[name]["labels"]), 4),
            "int8_flip_average": round(
                accuracy(folds[name]["logits"] + folds[name]["mirrored"], folds[name]["labels"]), 4
            ),
            "int8_small_garment": round(accuracy(folds[name]["small"], folds[name]["labels"]), 4),
        }
        for name in names
    ]

    def spread(key):
        values = [row[key] for row in rows]
        return {
            "mean": round(statistics.mean(values), 4),
            "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
        }

    logits = np.concatenate([folds[n]["logits"] for n in names])
    truth = np.concatenate([folds[n]["labels"] for n in names])
    pooled = score(((labels[t], labels[p]) for t, p in zip(truth, logits.argmax(1), strict=True)), labels)
    return {
        "folds": rows,
        **{key: spread(key) for key in ("float_keras", "int8_served", "int8_flip_average", "int8_small_garment")},
        "pooled_int8_served": pooled,  # every photo once, by the fold that held it out: per label, confusion
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="a cross-validation run: fold*/ with model.keras, labels.txt, oof.npz")
    p.add_argument("--data-dir", type=Path, default=Path("../shared/data/clothing-dataset-small"))
    p.add_argument("--representative-count", type=int, default=1000, help="int8 calibration photos per fold")
    p.add_argument("--min-agreement", type=float, help="convert.py's gate: least top-1 agreement of int8 with Keras")
    p.add_argument("--json", type=Path, help="write the summary here")
    p.add_argument("--confusion-png", type=Path, help="draw the pooled confusion matrix (int8, as served) here")
    args = p.parse_args(argv)
    folds = {
        fold.name: measure_fold(fold, args.data_dir, args.representative_count, args.min_agreement)
        for fold in sorted(args.run.glob("fold*"))
        if (fold / "oof.npz").exists()
    }
    if not folds:
        sys.exit(f"error: no fold*/oof.npz under {args.run} (model/train.py --fold I/K writes them)")
    labels = (args.run / next(iter(folds)) / "labels.txt").read_text().split()
    summary = summarise(folds, labels)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    if args.confusion_png:
        pooled = summary["pooled_int8_served"]
        title = f"out of fold, int8 as served: {pooled['images']} photos, accuracy {pooled['accuracy']:.1%}"
        confusion_png(pooled["labels"], pooled["confusion"], title, args.confusion_png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
