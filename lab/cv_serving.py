"""A cross-validated recipe as it is served: each fold's model converted to int8 and run through the serving code
on the photos that fold held out.

    python -m lab.cv_serving lab/runs/cv-default --data-dir ../shared/data/clothing-dataset-small \\
        --json lab/runs/cv-default/serving.json

For every ``fold*/`` of the run (``python -m lab.train --fold I/K`` wrote its ``model.keras`` and ``oof.npz``):

1. ``lab.convert --quantize int8`` calibrated on that fold's *training* photos only (so no held-out photo is seen
   by the quantizer either), written to ``foldI/int8-rN/``; an existing conversion is reused;
2. every held-out photo decoded, prepared and classified by the serving code (``core/``), as a request would be;
   also mirrored left-right (test-time flip averaging, measured here, not served), and shrunk to half its width
   and height on a canvas of its border's colour (a small garment in a large frame: the photos the model is
   weakest on outside this dataset);
3. ``foldI/int8-rN/serving.npz``: the logits of each view, labels and paths.

The summary: accuracy per fold, mean and spread, of float Keras (``oof.npz``), of int8 as served, of int8 with
flip averaging, and of int8 on the shrunk photos. ``python -m lab.calibrate --served`` fits the probabilities'
temperature on the int8 logits as served.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lab.dataset import all_photos, list_split
from lab.report import show_report
from lab.scoring import confusion_png, score

ROOT = Path(__file__).resolve().parent.parent


class CrossValidationError(Exception):
    """A cross-validation run that cannot be measured or compared as asked; printed as one plain line."""


def link_photos(paths: Iterable[Path], labels_of: dict[Path, str], folder: Path) -> None:
    """``folder/<label>/<split>-<name>``: symlinks, so the existing folder-based tools read a fold's photos."""
    for path in paths:
        target = folder / labels_of[path] / f"{path.parent.parent.name}-{path.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(path)


def fold_photos(
    data_dir: Path, labels: Sequence[str], held_out: Iterable[str]
) -> tuple[dict[Path, str], list[Path], list[Path]]:
    """All of train + validation by label, and the fold's training and held-out photos (resolved paths)."""
    paths, ids = all_photos(data_dir, labels)
    labels_of = {p.resolve(): labels[i] for p, i in zip(paths, ids, strict=True)}
    held = {Path(p).resolve() for p in held_out}
    missing = held - labels_of.keys()
    if missing:
        raise CrossValidationError(
            f"{len(missing)} held-out photos are not under {data_dir}, e.g. {next(iter(missing))}"
        )
    return labels_of, sorted(labels_of.keys() - held), sorted(held)


def convert_fold(
    fold: Path, train_view: Path, held_view: Path, out: Path, count: int, min_agreement: float | None
) -> None:
    """``lab.convert`` in a process of its own (TensorFlow's converter keeps state): the fold's int8 model."""
    command = [
        sys.executable, "-m", "lab.convert", str(fold / "model.keras"),
        "--out", str(out / "clothing-model.tflite"), "--name", "clothing-model", "--version", f"cv-{fold.name}",
        "--labels", str(fold / "labels.txt"), "--quantize", "int8",
        "--representative-dir", str(train_view), "--representative-count", str(count),
        "--parity-dir", str(held_view),
    ]  # fmt: skip
    if min_agreement is not None:
        command += ["--min-agreement", str(min_agreement)]
    if subprocess.run(command, cwd=ROOT).returncode != 0:
        raise CrossValidationError(f"converting {fold} to int8 failed (lab.convert's message above)")


def small_garment(image: Any, scale: float = 0.5) -> Any:
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


def served_logits(
    manifest: Path, folder: Path, labels: Sequence[str] | None = None, views: bool = True
) -> dict[str, Any]:
    """Logits of every photo of a folder-per-label split through the serving code (decode, preprocess, predict),
    with its ``labels`` (default: the manifest's) and paths; with ``views``, also mirrored left-right and shrunk."""
    from core.images import decode_image
    from core.model import Classifier

    clf = Classifier(manifest, threads=1)
    paths, truth = list_split(folder, list(clf.loaded_manifest().labels) if labels is None else labels)
    plain: list[np.ndarray] = []
    mirrored: list[np.ndarray] = []
    shrunk: list[np.ndarray] = []
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


def measure_fold(fold: Path, data_dir: Path, count: int, min_agreement: float | None = None) -> dict[str, Any]:
    """The fold's int8 model served on its held-out photos (converted and measured once, then read back)."""
    labels = (fold / "labels.txt").read_text().split()
    oof = np.load(fold / "oof.npz")
    out = fold / f"int8-r{count}"
    saved = out / "serving.npz"
    data: dict[str, Any] = dict(np.load(saved)) if saved.exists() else {}
    if "small" not in data:  # not measured yet, or measured without the shrunk view: measure it all
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


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean())


def summarise(folds: dict[str, dict[str, Any]], labels: list[str]) -> dict[str, Any]:
    """Accuracy per fold of each view, their mean and spread, and every held-out photo pooled (int8 as served)."""
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

    def spread(key: str) -> dict[str, float]:
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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = measure_run(args.run, args.data_dir, args.representative_count, args.min_agreement)
    except CrossValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    show_report(summary, args.json)
    if args.confusion_png:
        pooled = summary["pooled_int8_served"]
        title = f"out of fold, int8 as served: {pooled['images']} photos, accuracy {pooled['accuracy']:.1%}"
        confusion_png(pooled["labels"], pooled["confusion"], title, args.confusion_png)
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m lab.cv_serving", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("run", type=Path, help="a cross-validation run: fold*/ with model.keras, labels.txt, oof.npz")
    p.add_argument("--data-dir", type=Path, default=Path("../shared/data/clothing-dataset-small"))
    p.add_argument("--representative-count", type=int, default=1000, help="int8 calibration photos per fold")
    p.add_argument("--min-agreement", type=float, help="lab.convert's gate: least top-1 agreement of int8 with Keras")
    p.add_argument("--json", type=Path, help="write the summary here")
    p.add_argument("--confusion-png", type=Path, help="draw the pooled confusion matrix (int8, as served) here")
    return p.parse_args(argv)


def measure_run(run: Path, data_dir: Path, count: int, min_agreement: float | None) -> dict[str, Any]:
    """Every fold of the run measured (``measure_fold``) and summarised."""
    folds = {
        fold.name: measure_fold(fold, data_dir, count, min_agreement)
        for fold in sorted(run.glob("fold*"))
        if (fold / "oof.npz").exists()
    }
    if not folds:
        raise CrossValidationError(f"no fold*/oof.npz under {run} (python -m lab.train --fold I/K writes them)")
    labels = (run / next(iter(folds)) / "labels.txt").read_text().split()
    return summarise(folds, labels)


if __name__ == "__main__":
    sys.exit(main())
