"""Build the ImageNet gate (core/gate.py), fit it on the clothing photos, measure it, and ship it beside the model.

1. The original EfficientNet-Lite0 with its ImageNet head (lab/efficientnet_lite.py), checked on photos of known
   ImageNet classes, converted to int8 TF Lite at the classifier's input size, calibrated on clothing photos.
2. Every photo of train + validation and of the not-clothing development set read as serving reads it: the
   classifier's sampled pixels, its ``clothing_distance`` (the shipped statistics), and the gate's 1,000
   probabilities of the same pixels.
3. Five folds (the recipe's stratified split): the class set and threshold fitted on four, the fifth's photos
   counted (lab/gate_fit.py). The ImageNet network never trained on these photos; the one thing set from them
   outside the folds is its int8 activation ranges (200 training photos), which scale the network, not the rule.
4. The shipped rule: classes and threshold fitted on all the photos; the gate asked for a distance above
   ``from_distance``, the distance its training photos exceed one time in ``1 / ASKED`` (in-sample, so held-out
   photos exceed it more often). The development set is scored by the whole rule, by group.

``--write`` puts ``model/imagenet-gate.tflite`` and the manifest's ``gate`` block in place. The report goes to
lab/results/imagenet-gate.json (docs/verdict.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ModelError
from lab.gate_fit import combined, cross_validated, fit, rates, scores

COVER = 0.95  # the classes that are the top-1 answer of this share of the clothing photos
FLAG = 0.002  # clothing photos the gate's threshold may call not_clothing (see --flag)
ASKED = 0.1  # the share of the training photos (in-sample) whose distance asks the gate
CALIBRATION_PHOTOS = 200
FOLDS = 5
SEED = 42  # the recipe's seed: the same folds as `make cv`
GATE_FILE = "imagenet-gate.tflite"
PREPROCESSING = "xception"  # the ImageNet network's own scaling: 0..255 -> -1..1


def build_gate(data_dir: Path, size: tuple[int, int]) -> bytes:
    """The ImageNet network as int8 TF Lite, checked on the known photos before it is converted."""
    from lab.conversion import convert_for_serving, image_batches
    from lab.efficientnet_lite import VARIANTS, pretrained
    from lab.imagenet_check import check_imagenet_top1, describe
    from lab.source_model import SourceModel

    model = pretrained(VARIANTS["efficientnet-lite0"], size[0])
    print("ImageNet check:", describe(check_imagenet_top1(model, size[0])), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "imagenet-lite0.keras"
        model.save(path)
        representative = image_batches(data_dir / "train", CALIBRATION_PHOTOS, size, PREPROCESSING, SEED)
        return convert_for_serving(SourceModel(path), "int8", representative)


class PhotoReader:
    """Photos -> (clothing_distance, the gate's probabilities), both from the pixels serving samples."""

    def __init__(self, manifest: Path, gate_path: Path) -> None:
        from core.gate import ClothingGate, GateRule
        from core.interpreter import find_runtime
        from core.model import Classifier

        self.classifier = Classifier(without_gate(manifest, gate_path.parent), threads=1).load()
        interpreter_class = find_runtime()[1]

        def make(path: Path) -> Any:
            interpreter = interpreter_class(model_path=str(path), num_threads=1)
            interpreter.allocate_tensors()
            return interpreter

        self.gate = ClothingGate(gate_path, GateRule(gate_path.name, "", PREPROCESSING, (0,), 0.0, 0.0), make)
        problem = self.gate.problem(self.classifier.loaded_manifest().input_size)
        if problem:
            raise ValueError(f"the gate {problem}")

    def read(self, paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
        from core.model import DecodeRules
        from core.settings import JPEG_EXACT_MAX_PIXELS

        clf = self.classifier
        rules = DecodeRules.for_input(clf.loaded_manifest().input_size, 10**8, JPEG_EXACT_MAX_PIXELS)
        distances, probabilities = [], []
        for path in paths:
            sampled = clf.sample_file(Path(path).read_bytes(), rules)
            judgement = clf.judge(*clf.infer(clf.model_input(sampled)))
            distances.append(np.nan if judgement.distance is None else judgement.distance)
            probabilities.append(self.gate.probabilities(sampled))
        return np.array(distances), np.stack(probabilities)


def without_gate(manifest: Path, folder: Path) -> Path:
    """A copy of the manifest in ``folder`` without its gate block, naming the model's files by absolute path: the
    distances are the statistics', whatever gate the manifest had before."""
    data = json.loads(manifest.read_text())
    data.pop("gate", None)
    data["model_file"] = str(manifest.parent.resolve() / data["model_file"])
    if isinstance(data.get("novelty"), dict):
        data["novelty"]["statistics_file"] = str(manifest.parent.resolve() / data["novelty"]["statistics_file"])
    copy = folder / "without-gate.json"
    copy.write_text(json.dumps(data))
    return copy


def fold_masks(paths: list[Path], ids: np.ndarray) -> list[np.ndarray]:
    from lab.photos import cross_validation_split

    index = {path: i for i, path in enumerate(paths)}
    masks = []
    for fold in range(FOLDS):
        held = np.zeros(len(paths), dtype=bool)
        held[[index[p] for p in cross_validation_split(paths, ids, (fold, FOLDS), SEED)[1][0]]] = True
        masks.append(held)
    return masks


def measure(args: argparse.Namespace, gate_path: Path) -> dict[str, Any]:
    from lab.dataset import all_photos
    from lab.not_clothing import PEOPLE_GROUPS, photo_groups

    manifest = json.loads(args.manifest.read_text())
    threshold = float(manifest["novelty"]["threshold"])
    paths, ids = all_photos(args.data_dir, manifest["labels"])
    by_group = photo_groups(args.not_clothing)
    if not by_group:
        raise FileNotFoundError(f"no photos in {args.not_clothing}: run python -m lab.not_clothing")
    dev = [p for g in sorted(by_group) for p in by_group[g]]
    groups = np.array([g for g in sorted(by_group) for _ in by_group[g]])
    reader = PhotoReader(args.manifest, gate_path)
    distance, probabilities = reader.read(paths)
    dev_distance, dev_probabilities = reader.read(dev)
    cv = cross_validated(probabilities, fold_masks(paths, ids), COVER, args.flag)
    shipped = fit(probabilities, COVER, args.flag)
    from_distance = round(float(np.quantile(distance, 1 - args.asked)), 3)
    if from_distance >= threshold:
        raise ValueError(
            f"{args.asked:.0%} of the training photos are farther than the threshold {threshold}: the band is empty"
        )
    dev_says_not = scores(dev_probabilities, shipped.classes) < shipped.threshold
    asked = (distance > from_distance) & (distance <= threshold)
    return {
        "cover": COVER,
        "flag": args.flag,
        "asked": args.asked,
        "photos": len(paths),
        "held_out_flagged_by_the_gate": cv["held_out_flagged"],
        "per_fold": cv["per_fold"],
        "classes": list(shipped.classes),
        "threshold": round(shipped.threshold, 3),
        "from_distance": from_distance,
        "training_photos_asking_the_gate": round(float(asked.mean()), 4),
        "gate_alone": rates(dev_says_not, groups, set(PEOPLE_GROUPS)),
        "distance_alone": rates(dev_distance > threshold, groups, set(PEOPLE_GROUPS)),
        "distance_and_gate": rates(
            combined(dev_distance, threshold, from_distance, dev_says_not), groups, set(PEOPLE_GROUPS)
        ),
        "gate_bytes": gate_path.stat().st_size,
        "held_out_with_the_gate": bounds(args.novelty_report, cv["held_out_flagged"]),
    }


def bounds(novelty_report: Path, gate_flagged: float) -> dict[str, Any] | None:
    """The held-out clothing verdicts (lab.novelty's folds) with the gate added, at worst: every photo the gate
    flagged in its folds taken from the "clothing" answers, all of them right ones. The folds' distances are
    not kept, so which of those photos the band would have asked is not known: the bound assumes all."""
    if not novelty_report.is_file():
        return None
    held = json.loads(novelty_report.read_text())["held_out"]
    clothing, right = held["clothing"], held["clothing"] * held["clothing_right"]
    return {
        "not_clothing_at_most": round(held["not_clothing"] + gate_flagged, 4),
        "clothing_at_least": round(clothing - gate_flagged, 4),
        "clothing_right_at_least": round((right - gate_flagged) / (clothing - gate_flagged), 4),
    }


def install(manifest_path: Path, gate_bytes: bytes, report: dict[str, Any]) -> Path:
    """The gate file beside the model and its rule in the manifest (the other keys kept)."""
    from core.manifest import sha256_of

    gate_path = manifest_path.with_name(GATE_FILE)
    gate_path.write_bytes(gate_bytes)
    manifest = json.loads(manifest_path.read_text())
    manifest["gate"] = {
        "method": "imagenet-classes",
        "model_file": GATE_FILE,
        "sha256": sha256_of(gate_path),
        "preprocessing": PREPROCESSING,
        "classes": report["classes"],
        "threshold": report["threshold"],
        "from_distance": report["from_distance"],
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return gate_path


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        manifest = json.loads(args.manifest.read_text())
        if args.gate and args.gate.is_file():
            gate_bytes = args.gate.read_bytes()
        else:
            gate_bytes = build_gate(args.data_dir, tuple(manifest["input_size"]))
            if args.gate:
                args.gate.parent.mkdir(parents=True, exist_ok=True)
                args.gate.write_bytes(gate_bytes)
        with tempfile.TemporaryDirectory() as tmp:
            gate_path = Path(tmp) / GATE_FILE
            gate_path.write_bytes(gate_bytes)
            report = measure(args, gate_path)
        if args.write:
            print(f"wrote {install(args.manifest, gate_bytes, report)} and the manifest's gate")
    except (FileNotFoundError, ValueError, KeyError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(report, indent=2) + "\n"
    if args.json:
        args.json.write_text(text)
    print(text, end="")
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m lab.imagenet_gate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data-dir", type=Path, default=Path("../shared/data/clothing-dataset-small"))
    p.add_argument("--not-clothing", type=Path, default=Path.home() / ".cache/clothing-classifier/not-clothing")
    p.add_argument("--manifest", type=Path, default=Path("model/clothing-model.json"))
    p.add_argument("--novelty-report", type=Path, default=Path("lab/results/novelty.json"), help="lab.novelty's")
    p.add_argument("--gate", type=Path, help="the int8 gate's file: read if it exists (no conversion), else written")
    p.add_argument("--flag", type=float, default=FLAG, help="clothing photos the gate may call not_clothing")
    p.add_argument("--asked", type=float, default=ASKED, help="training photos whose distance asks the gate")
    p.add_argument("--json", type=Path, help="write the report here")
    p.add_argument("--write", action="store_true", help="ship the gate beside the model and name it in the manifest")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
