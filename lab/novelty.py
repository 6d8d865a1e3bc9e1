"""Fit and measure the verdict of ``details`` answers (core/novelty.py) without leaking, and ship it with the model.

    python -m lab.novelty lab/runs/cv-nocrop --data-dir ../shared/data/clothing-dataset-small \\
        --not-clothing ~/.cache/clothing-classifier/not-clothing --json lab/results/novelty.json \\
        --manifest model/clothing-model.json --write

The shipped model trained on every photo, so its own distances of those photos are optimistic. Each
cross-validation fold (``lab.train --fold``, converted to int8 by ``lab.cv_serving``) is used instead:

1. its statistics are fitted on its training photos' pooled activations only, as they are and shrunk to half size
   on their border's colour (two centres per label: lab/novelty_fit.py), and its held-out photos measured, as they
   are and shrunk (which should stay clothing); so are each label's held-out photos scored by statistics fitted
   without that label ("near" novelty) and the not-clothing development set (``python -m lab.not_clothing``);
2. the signals compared by AUROC (held-out clothing against the development set, people apart): the top softmax
   probability, the energy of the logits, the Mahalanobis distance;
3. the threshold: the distance that ``--flag`` of the pooled held-out photos exceed; the "not_sure" bar: the least
   calibrated top probability above which the "clothing" answers are right at least ``--precision`` of the time.

With ``--write``, the shipped model's statistics are fitted on all its training photos and their shrunk views, its
layers' activations exposed as extra outputs (lab/feature_output.py: the logits are unchanged), and the manifest
given both rules.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.model import softmax
from lab.cv_serving import CrossValidationError, fold_photos
from lab.novelty_fit import LAYERS, FeatureReader, cached_features, distance_of, fit_with_small_views
from lab.report import show_report

SERVED = "int8-r1000"  # lab.cv_serving's int8 conversion of each fold


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """The chance that an outside photo scores higher than an inside one (ties count half)."""
    inside = np.sort(inside)
    below = np.searchsorted(inside, outside, side="left")
    not_above = np.searchsorted(inside, outside, side="right")
    return float(((below + not_above) / 2).mean() / len(inside))


def signals(logits: np.ndarray, distances: np.ndarray, temperature: float) -> dict[str, np.ndarray]:
    """Each candidate's novelty score (higher: less like the training clothing)."""
    top = logits.max(axis=1, keepdims=True)
    return {
        "max_softmax": -softmax(logits).max(axis=1),
        "max_softmax_calibrated": -softmax(logits / temperature).max(axis=1),
        "energy": -(top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))),
        "mahalanobis": distances,
    }


def measure_fold(fold: Path, data_dir: Path, labels: list[str], dev: list[Path]) -> dict[str, Any]:
    """One fold's held-out, shifted and development-set numbers, its statistics fitted in-fold."""
    served = fold / SERVED
    if not (served / "serving.npz").is_file():
        raise CrossValidationError(f"{served}/serving.npz is missing: run python -m lab.cv_serving first")
    with np.load(served / "serving.npz", allow_pickle=False) as stored:
        held_out = [str(p) for p in stored["paths"]]
    labels_of, train, held = fold_photos(data_dir, labels, held_out)
    reader = functools.cache(lambda: FeatureReader(served / "clothing-model.json"))  # built on a cache miss only
    logits, features = cached_features(served / "features.npz", lambda: reader().read(train + held), train + held)
    dev_logits, dev_features = cached_features(served / "not-clothing-features.npz", lambda: reader().read(dev), dev)
    _, small = cached_features(served / "small-features.npz", lambda: reader().read(held, small_garment_of), held)
    _, small_train = cached_features(
        served / "small-train-features.npz", lambda: reader().read(train, small_garment_of), train
    )
    ids = {label: i for i, label in enumerate(labels)}
    train_ids = np.array([ids[labels_of[p]] for p in train])
    held_ids = np.array([ids[labels_of[p]] for p in held])
    fitted, held_features = [f[: len(train)] for f in features], [f[len(train) :] for f in features]
    distance = distance_of(fit_with_small_views(fitted, small_train, train_ids, len(labels)))
    left_out = np.empty(len(held))
    for k in range(len(labels)):  # clothing the statistics never saw: the label left out of them
        keep, mine = train_ids != k, held_ids == k
        kept = [f[keep] for f in fitted], [f[keep] for f in small_train]
        unseen = distance_of(fit_with_small_views(*kept, train_ids[keep], len(labels)))
        left_out[mine] = unseen.batch([f[mine] for f in held_features])
    return {
        "held_logits": logits[len(train) :],
        "held_labels": held_ids,
        "held_distances": distance.batch(held_features),
        "held_layers": np.stack([layer.batch(f) for layer, f in zip(distance.layers, held_features, strict=True)], 1),
        "small_distances": distance.batch(small),
        "left_out_distances": left_out,
        "dev_logits": dev_logits,
        "dev_distances": distance.batch(dev_features),
        "dev_layers": np.stack([layer.batch(f) for layer, f in zip(distance.layers, dev_features, strict=True)], 1),
    }


def small_garment_of(data: bytes) -> bytes:
    """The photo shrunk to half its size on a canvas of its border's colour (lab.cv_serving's shifted view)."""
    import io

    from PIL import Image

    from lab.cv_serving import small_garment

    out = io.BytesIO()
    with Image.open(io.BytesIO(data)) as img:
        small_garment(img).save(out, "PNG")
    return out.getvalue()


def pooled(folds: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    return {key: np.concatenate([fold[key] for fold in folds]) for key in folds[0]}


def not_sure_bar(
    logits: np.ndarray, labels: np.ndarray, clothing: np.ndarray, temperature: float, precision: float
) -> float:
    """The least calibrated top probability above which the photos judged clothing are right ``precision`` of
    the time (searched from the top down, so the bar keeps as many photos as the precision allows)."""
    p = softmax(logits / temperature)
    confidence, right = p.max(axis=1)[clothing], (p.argmax(axis=1) == labels)[clothing]
    order = np.argsort(-confidence)
    running = np.cumsum(right[order]) / np.arange(1, len(order) + 1)
    ok = np.nonzero(running >= precision)[0]
    if not len(ok):
        raise CrossValidationError(f"no bar makes the answers right {precision:.0%} of the time")
    return round(float(confidence[order][ok[-1]]), 3)


def operating_point(
    data: dict[str, np.ndarray],
    groups: np.ndarray,
    people: set[str],
    temperature: float,
    flag: float,
    precision: float,
    folds: int = 1,
) -> dict[str, Any]:
    """The two rules fitted on the pooled held-out photos, and what they do to each set. ``groups``: the group of
    each pooled development-set distance (the set once for each of the ``folds``)."""
    threshold = round(float(np.quantile(data["held_distances"], 1 - flag)), 3)
    clothing = data["held_distances"] <= threshold
    bar = not_sure_bar(data["held_logits"], data["held_labels"], clothing, temperature, precision)
    p = softmax(data["held_logits"] / temperature)
    sure = clothing & (p.max(axis=1) >= bar)
    right = p.argmax(axis=1) == data["held_labels"]
    flagged_dev = data["dev_distances"] > threshold
    return {
        "threshold": threshold,
        "not_sure_below": bar,
        "held_out": {
            "photos": int(len(clothing)),
            "not_clothing": round(float(1 - clothing.mean()), 4),
            "not_sure": round(float((clothing & ~sure).mean()), 4),
            "clothing": round(float(sure.mean()), 4),
            "clothing_right": round(float(right[sure].mean()), 4),
            "accuracy": round(float(right.mean()), 4),
        },
        "small_garments_not_clothing": round(float((data["small_distances"] > threshold).mean()), 4),
        "left_out_label_not_clothing": round(float((data["left_out_distances"] > threshold).mean()), 4),
        "not_clothing_by_group": {
            str(g): {
                "photos": int((groups == g).sum()) // folds,
                "not_clothing": round(float(flagged_dev[groups == g].mean()), 4),
            }
            for g in sorted(set(groups.tolist()))
        },
        "development_set_not_clothing": round(float(flagged_dev[~np.isin(groups, list(people))].mean()), 4),
    }


def cross_fitted(data: dict[str, np.ndarray], temperature: float, flag: float, precision: float) -> dict[str, Any]:
    """Both rules fitted on a random half of the held-out photos and measured on the other half, 20 times each way:
    how the thresholds carry to photos they were not chosen on (the mean, and the worst split)."""
    count, results = len(data["held_labels"]), []
    for seed in range(20):
        order = np.random.default_rng(seed).permutation(count)
        for fit, measure in ((order[: count // 2], order[count // 2 :]), (order[count // 2 :], order[: count // 2])):
            distances, logits, labels = data["held_distances"], data["held_logits"], data["held_labels"]
            threshold = np.quantile(distances[fit], 1 - flag)
            bar = not_sure_bar(logits[fit], labels[fit], distances[fit] <= threshold, temperature, precision)
            p = softmax(logits[measure] / temperature)
            clothing = distances[measure] <= threshold
            sure = clothing & (p.max(axis=1) >= bar)
            right = (p.argmax(axis=1) == labels[measure])[sure]
            results.append((1 - clothing.mean(), sure.mean(), right.mean()))
    table = np.array(results)
    return {
        "splits": len(results),
        "not_clothing": {"mean": round(float(table[:, 0].mean()), 4), "worst": round(float(table[:, 0].max()), 4)},
        "clothing": {"mean": round(float(table[:, 1].mean()), 4), "worst": round(float(table[:, 1].min()), 4)},
        "clothing_right": {"mean": round(float(table[:, 2].mean()), 4), "worst": round(float(table[:, 2].min()), 4)},
    }


def per_label(data: dict[str, np.ndarray], labels: list[str], threshold: float) -> dict[str, dict[str, float]]:
    """Each label's held-out and shifted photos flagged "not_clothing" (which clothing the check doubts)."""
    out = {}
    for k, label in enumerate(labels):
        mine = data["held_labels"] == k
        out[label] = {
            "held_out": round(float((data["held_distances"][mine] > threshold).mean()), 4),
            "small_garments": round(float((data["small_distances"][mine] > threshold).mean()), 4),
            "left_out_of_the_statistics": round(float((data["left_out_distances"][mine] > threshold).mean()), 4),
        }
    return out


def compare_signals(
    data: dict[str, np.ndarray], groups: np.ndarray, people: set[str], temperature: float
) -> dict[str, dict[str, float]]:
    """AUROC of each signal: held-out clothing against the development set (people apart), and the shifted set."""
    held = signals(data["held_logits"], data["held_distances"], temperature)
    dev = signals(data["dev_logits"], data["dev_distances"], temperature)
    objects = ~np.isin(groups, list(people))
    table = {}
    for name in held:
        table[name] = {"not_clothing": round(auroc(held[name], dev[name][objects]), 4)}
        if objects.sum() < len(objects):
            table[name]["people"] = round(auroc(held[name], dev[name][~objects]), 4)
    for i, name in enumerate(LAYERS):
        table[f"mahalanobis {name}"] = {
            "not_clothing": round(auroc(data["held_layers"][:, i], data["dev_layers"][objects, i]), 4)
        }
    table["mahalanobis"]["small_garments"] = round(auroc(data["held_distances"], data["small_distances"]), 4)
    table["mahalanobis"]["left_out_label"] = round(auroc(data["held_distances"], data["left_out_distances"]), 4)
    return table


def ship(
    manifest_path: Path, data_dir: Path, dev: list[Path], groups: np.ndarray, people: set[str], point: dict[str, Any]
) -> dict[str, Any]:
    """The shipped model's statistics on all its photos, its activations exposed, and both rules in its manifest."""
    from core.manifest import sha256_of
    from lab.dataset import all_photos
    from lab.feature_output import expose_features, scores_only
    from lab.novelty_fit import save_statistics

    manifest = json.loads(manifest_path.read_text())
    paths, ids = all_photos(data_dir, manifest["labels"])
    reader = FeatureReader(manifest_path)
    plain, small = reader.read(paths)[1], reader.read(paths, small_garment_of)[1]
    statistics = fit_with_small_views(plain, small, ids, len(manifest["labels"]))
    stats_path = manifest_path.with_name(manifest_path.stem + "-novelty.npz")
    save_statistics(stats_path, statistics, LAYERS)
    model_path = manifest_path.with_name(manifest["model_file"])
    model_path.write_bytes(expose_features(scores_only(model_path.read_bytes()), LAYERS)[0])
    manifest["sha256"] = sha256_of(model_path)
    manifest["novelty"] = {
        "method": "mahalanobis",
        "statistics_file": stats_path.name,
        "sha256": sha256_of(stats_path),
        "threshold": point["threshold"],
    }
    manifest["not_sure_below"] = point["not_sure_below"]
    manifest["version"] = (manifest_path.parent.parent / "VERSION").read_text().strip()  # the project's one version
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    flagged = distance_of(statistics).batch(reader.read(dev)[1]) > point["threshold"]
    return {
        "statistics_bytes": stats_path.stat().st_size,
        "development_set_not_clothing": round(float(flagged[~np.isin(groups, list(people))].mean()), 4),
        "not_clothing_by_group": {
            str(g): round(float(flagged[groups == g].mean()), 4) for g in sorted(set(groups.tolist()))
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    from lab.not_clothing import PEOPLE_GROUPS, photo_groups

    args = parse_args(argv)
    try:
        folds = sorted(p.parent.parent for p in args.run.glob(f"fold*/{SERVED}/serving.npz"))
        if not folds:
            raise CrossValidationError(f"no fold of {args.run} has {SERVED}/serving.npz: run lab.cv_serving")
        by_group = photo_groups(args.not_clothing)
        if not by_group:
            raise CrossValidationError(f"no photos in {args.not_clothing}: run python -m lab.not_clothing")
        dev = [p for g in sorted(by_group) for p in by_group[g]]
        groups = np.array([g for g in sorted(by_group) for _ in by_group[g]])
        manifest = json.loads(args.manifest.read_text())
        labels, temperature = manifest["labels"], float(manifest.get("temperature", 1.0))
        measured = []
        for fold in folds:
            print(f"{fold.name}: features and in-fold statistics ...", flush=True)
            measured.append(measure_fold(fold, args.data_dir, labels, dev))
        data = pooled(measured)
        dev_groups = np.tile(groups, len(measured))  # each fold's model measures the whole development set
        point = operating_point(
            data, dev_groups, set(PEOPLE_GROUPS), temperature, args.flag, args.precision, folds=len(measured)
        )
        report = {
            "folds": [f.name for f in folds],
            "flag": args.flag,
            "precision": args.precision,
            "auroc": compare_signals(data, dev_groups, set(PEOPLE_GROUPS), temperature),
            **point,
            "per_label": per_label(data, labels, point["threshold"]),
            "cross_fitted_on_halves": cross_fitted(data, temperature, args.flag, args.precision),
        }
        if args.write:
            report["shipped"] = ship(args.manifest, args.data_dir, dev, groups, set(PEOPLE_GROUPS), point)
    except (CrossValidationError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    show_report(report, args.json)
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m lab.novelty", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("run", type=Path, help="a cross-validation run whose folds lab.cv_serving converted")
    p.add_argument("--data-dir", type=Path, default=Path("../shared/data/clothing-dataset-small"))
    p.add_argument("--not-clothing", type=Path, default=Path.home() / ".cache/clothing-classifier/not-clothing")
    p.add_argument("--manifest", type=Path, default=Path("model/clothing-model.json"))
    p.add_argument("--flag", type=float, default=0.01, help="held-out clothing the threshold may call not_clothing")
    p.add_argument("--precision", type=float, default=0.975, help="how often a 'clothing' answer must be right")
    p.add_argument("--json", type=Path, help="write the report here")
    p.add_argument("--write", action="store_true", help="fit the shipped model's statistics into its manifest")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
