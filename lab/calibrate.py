"""Cross-validation results of a recipe, and temperature scaling for the served model's probabilities.

    python -m lab.train --fold I/5 --out lab/runs/cv-default/foldI ...   # for I in 0..4 (oof.npz each)
    python -m lab.cv_serving lab/runs/cv-default                          # int8 logits as served
    python -m lab.calibrate lab/runs/cv-default --served --manifest model/clothing-model.json \\
        --json model/calibration.json --write-manifest

1. The recipe's out-of-fold accuracy: each fold's kept model on the photos it never trained on, the mean and
   spread over the folds; its logits from float Keras (``oof.npz``) or, with ``--served``, from the fold's int8
   model through the serving code (``int8-r1000/serving.npz``, written by lab.cv_serving).
2. A temperature T fitted (least negative log-likelihood) on those out-of-fold logits; expected calibration error
   (10 bins) before and after, cross-fitted over the folds (T fitted without fold k, measured on fold k).
3. With ``--split`` (photos the served model never saw): T is fitted on the *train* split's photos only, and the
   served model is measured on the split, accuracy and calibration error before and after T.
   ``--write-manifest`` stores T in the manifest, where serving applies it to ``"probabilities": true`` (the
   default answer, raw logits, is unchanged).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.model import softmax  # the one serving applies to "probabilities"
from lab.cv_serving import CrossValidationError
from lab.report import show_report

TEMPERATURES = np.arange(0.30, 3.0, 0.005)
BINS = 10


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of the true labels under softmax(logits / temperature)."""
    p = softmax(logits / temperature)
    return float(-np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature of least negative log-likelihood, searched on a grid (one parameter: no optimizer needed)."""
    return float(min(TEMPERATURES, key=lambda t: nll(logits, labels, t)))


def ece(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Expected calibration error: |accuracy - confidence| per confidence bin, weighted by the bin's share."""
    p = softmax(logits / temperature)
    confidence, right = p.max(axis=1), p.argmax(axis=1) == labels
    total = 0.0
    for low in np.arange(BINS) / BINS:
        members = (confidence > low) & (confidence <= low + 1 / BINS)
        if members.any():
            total += members.mean() * abs(right[members].mean() - confidence[members].mean())
    return float(total)


def load_folds(run: Path, served: str | None = None) -> list[dict[str, Any]]:
    """Each fold's out-of-fold logits: float Keras', or those of its int8 model as served (``served``: the
    lab.cv_serving folder, e.g. int8-r1000)."""
    folds = []
    for fold in sorted(path.parent for path in run.glob("fold*/oof.npz")):
        path = fold / served / "serving.npz" if served else fold / "oof.npz"
        if not path.exists():
            raise CrossValidationError(f"{path} not found (python -m lab.cv_serving {run} writes it)")
        data = np.load(path)
        paths = data["paths"].astype(str)
        summary = json.loads((fold / "summary.json").read_text())
        folds.append(
            {
                "fold": fold.name,
                "logits": data["logits"],
                "labels": data["labels"],
                "paths": paths,
                "train_split": np.char.find(paths, "/train/") >= 0,
                "best_epoch": summary["best_epoch"],
            }
        )
    if not folds:
        raise CrossValidationError(f"no fold*/oof.npz under {run} (python -m lab.train --fold I/K writes them)")
    return folds


def calibrate(run: Path, manifest: Path | None, split: Path | None, served: str | None = None) -> dict[str, Any]:
    """The folds' accuracy, the temperature fitted on their logits, and the calibration error before and after."""
    folds = load_folds(run, served)
    # Photos the fit may use: all of them, unless the served model is to be measured on the validation split.
    for f in folds:
        f["fit"] = f["train_split"] if split is not None else np.ones(len(f["labels"]), dtype=bool)
    accuracy = [float((f["logits"].argmax(1) == f["labels"]).mean()) for f in folds]
    cross_fitted = []
    for k, held in enumerate(folds if len(folds) > 1 else []):  # one fold alone has no other to fit on
        others = [f for i, f in enumerate(folds) if i != k]
        t = fit_temperature(
            np.concatenate([f["logits"][f["fit"]] for f in others]),
            np.concatenate([f["labels"][f["fit"]] for f in others]),
        )
        cross_fitted.append({"temperature": t, "before": ece(held["logits"], held["labels"]), "after": 0.0})
        cross_fitted[-1]["after"] = ece(held["logits"], held["labels"], t)
    temperature = fit_temperature(
        np.concatenate([f["logits"][f["fit"]] for f in folds]), np.concatenate([f["labels"][f["fit"]] for f in folds])
    )
    result: dict = {
        "logits": f"int8 as served ({served})" if served else "float Keras",
        "fitted_on": "train split" if split is not None else "all out-of-fold photos",
        "folds": [
            {"fold": f["fold"], "images": len(f["labels"]), "accuracy": round(a, 4), "best_epoch": f["best_epoch"]}
            for f, a in zip(folds, accuracy, strict=True)
        ],
        "cv_accuracy_mean": round(float(np.mean(accuracy)), 4),
        "cv_accuracy_std": round(float(np.std(accuracy, ddof=1)) if len(folds) > 1 else 0.0, 4),
        "temperature": round(temperature, 3),
        "ece_out_of_fold_before": round(float(np.mean([c["before"] for c in cross_fitted])), 4)
        if cross_fitted
        else None,
        "ece_out_of_fold_after": round(float(np.mean([c["after"] for c in cross_fitted])), 4) if cross_fitted else None,
    }
    if manifest is not None and split is not None:
        from lab.cv_serving import served_logits  # decode, preprocess, predict: the serving code

        measured = served_logits(manifest, split, views=False)
        logits, truth = measured["logits"], measured["labels"]
        result["served"] = {
            "split": str(split),
            "images": len(truth),
            "accuracy": round(float((logits.argmax(1) == truth).mean()), 4),
            "ece_before": round(ece(logits, truth), 4),
            "ece_after": round(ece(logits, truth, temperature), 4),
            "mean_top_probability_before": round(float(softmax(logits).max(1).mean()), 4),
            "mean_top_probability_after": round(float(softmax(logits / temperature).max(1).mean()), 4),
        }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lab.calibrate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("run", type=Path, help="a cross-validation run: fold*/oof.npz and summary.json")
    p.add_argument("--manifest", type=Path, help="the served model, measured on --split")
    p.add_argument("--split", type=Path, help="photos neither the served model nor the fit saw")
    p.add_argument(
        "--served",
        nargs="?",
        const="int8-r1000",
        help="use the folds' int8 logits as served (lab.cv_serving's folder in each fold; default int8-r1000)",
    )
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--write-manifest", action="store_true", help="store the temperature in --manifest")
    args = p.parse_args(argv)
    if args.write_manifest and args.manifest is None:
        p.error("--write-manifest needs --manifest")
    try:
        result = calibrate(args.run, args.manifest, args.split, args.served)
    except CrossValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    show_report(result, args.json)
    if args.write_manifest:
        data = json.loads(args.manifest.read_text())
        data["temperature"] = result["temperature"]
        args.manifest.write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
