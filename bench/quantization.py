"""Benchmark 7: what quantization costs in accuracy on the book's network, trained.

The latency benchmark's Xception has random weights, which says nothing about accuracy. This one takes the
Xception trained by bench/xception_train.py (on a GPU machine), converts it as convert.py does (float32,
dynamic-range, full-integer int8 calibrated on 200 training photos) and evaluates each through the serving
code on the 341 validation photos: accuracy, agreement with float32 photo by photo, inference time, size.
Without the trained model it writes nothing (the committed results stay) and says why. The smoke mode runs
the same code on the default model's float32 and shipped int8 conversions.
"""

from __future__ import annotations

import json

from bench import models
from bench.common import DATA, ROOT, publish
from lab.evaluate import evaluate

VARIANTS = ("float32", "dynamic", "int8")


def measure(manifests: dict, training: dict) -> dict:
    """Evaluate each conversion ({quantization: manifest}, float32 first) on the validation photos."""
    rows = [
        {**evaluate(manifest, DATA / "validation"), "quantization": quantize}
        for quantize, manifest in manifests.items()
    ]
    reference = rows[0]["predictions"]
    for row in rows:
        row["agreement_with_float32"] = sum(
            a == b for a, b in zip(row.pop("predictions"), reference, strict=False)
        ) / len(reference)
    return {
        "training": training,
        "rows": [
            {
                k: r[k]
                for k in (
                    "quantization",
                    "runtime",
                    "images",
                    "accuracy",
                    "agreement_with_float32",
                    "latency_ms_median",
                    "model_bytes",
                    "per_label_accuracy",
                )
            }
            for r in rows
        ],
    }


def run(smoke: bool = False) -> dict | None:
    title = "Trained Xception-299: validation accuracy by conversion"
    if smoke:  # the same code on the default model's two conversions: seconds, not minutes
        title = "Default model: validation accuracy by conversion"
        result = measure({"float32": models.default_float32(), "int8": models.DEFAULT_INT8}, {})
    elif models.trained_xception("float32") is None:
        print(
            f"quantization: skipped, no trained Xception at {models.TRAINED_XCEPTION.relative_to(ROOT)} "
            "(train one with bench/xception_train.py on a GPU machine); the committed results stay"
        )
        return None
    else:
        log = models.TRAINED_XCEPTION.parent / "xception-trained" / "xception-train.json"
        summary = json.loads(log.read_text()) if log.exists() else {}
        result = measure(
            {q: models.trained_xception(q) for q in VARIANTS},
            {k: summary.get(k) for k in ("best_epoch", "epochs_run", "train_seconds", "backend", "val_accuracy")},
        )
    return publish(
        "quantization",
        result,
        title,
        [r["quantization"] for r in result["rows"]],
        [100 * r["accuracy"] for r in result["rows"]],
        "%",
    )


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
