"""Evaluate a served model (manifest + .tflite) on an image-folder split, through the serving code itself.

    python -m lab.evaluate model/clothing-model.json --split ../shared/data/clothing-dataset-small/validation \
        --json model/metrics.json --confusion-png lab/results/validation-confusion.png

Reports accuracy, per-class accuracy, the confusion matrix, and single-image inference latency
(median of the per-image `predict` times, one thread).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.images import decode_image
from core.model import Classifier
from lab.dataset import list_split
from lab.scoring import confusion_png, score


def evaluate(manifest_path: Path, split_dir: Path, threads: int = 1, jpeg_draft: bool = False) -> dict[str, Any]:
    """Every photo of a folder-per-label split through the serving code: accuracy, confusion, latency, size."""
    clf = Classifier(manifest_path, threads=threads)
    manifest = clf.loaded_manifest()
    draft = (manifest.input_size[1], manifest.input_size[0]) if jpeg_draft else None
    labels = list(manifest.labels)
    paths, truth = list_split(Path(split_dir), labels)
    answers: list[int] = []
    latencies: list[float] = []
    for path in paths:
        batch = clf.preprocess(decode_image(path.read_bytes(), max_pixels=10**8, draft_size=draft))
        started = time.perf_counter()
        scores = clf.predict(batch)
        latencies.append((time.perf_counter() - started) * 1000)
        answers.append(int(np.argmax(scores)))
    result = score(((labels[t], labels[p]) for t, p in zip(truth, answers, strict=True)), labels)
    return {
        "model": manifest.name,
        "quantization": manifest.quantization,
        "runtime": clf.runtime,
        **result,  # images, accuracy, per_label_accuracy, labels, confusion
        "predictions": answers,  # per image, in list_split order (for agreement between variants)
        "latency_ms_median": statistics.median(latencies),
        "model_bytes": manifest.model_path.stat().st_size,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lab.evaluate", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("manifest", type=Path)
    p.add_argument("--split", type=Path, default=Path("../shared/data/clothing-dataset-small/validation"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jpeg-draft", action="store_true", help="decode JPEGs at reduced scale (JPEG_DRAFT=1)")
    p.add_argument("--json", type=Path, help="write the results here")
    p.add_argument("--confusion-png", type=Path, help="draw the confusion matrix here")
    args = p.parse_args(argv)
    result = evaluate(args.manifest, args.split, args.threads, args.jpeg_draft)
    print(
        f"{result['model']} ({result['quantization']}, {result['runtime']}): accuracy {result['accuracy']:.4f} "
        f"on {result['images']} images, median inference {result['latency_ms_median']:.2f} ms, "
        f"{result['model_bytes'] / 1e6:.2f} MB"
    )
    for label, acc in result["per_label_accuracy"].items():
        print(f"  {label:<11} {acc:.3f}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if args.confusion_png:
        title = f"{result['model']} on validation: accuracy {result['accuracy']:.1%}"
        confusion_png(result["labels"], result["confusion"], title, args.confusion_png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
