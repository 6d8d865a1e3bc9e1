"""Convert a Keras model in every quantization mode and measure each variant through the serving code.

    python -m lab.variants model/clothing-model.keras --out-dir lab/runs/variants \
        --data-dir ../shared/data/clothing-dataset-small --legacy-python .venv-tflite/bin/python

Prints a markdown table (size, median single-image latency on one thread, validation accuracy, loads in
tflite-runtime 2.14) and writes it as JSON next to the variants.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab.conversion import QUANTIZE_MODES
from lab.convert import main as convert
from lab.evaluate import evaluate


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lab.variants", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("source", type=Path)
    p.add_argument("--out-dir", type=Path, default=Path("lab/runs/variants"))
    p.add_argument("--data-dir", type=Path, default=Path("../shared/data/clothing-dataset-small"))
    p.add_argument("--legacy-python", type=Path)
    p.add_argument("--name", default="clothing-model")
    p.add_argument("--labels", help="labels file or list, as lab.convert takes it (default: the clothing labels)")
    p.add_argument("--representative-count", type=int, default=1000, help="int8 calibration images")
    args = p.parse_args(argv)

    rows: list[dict[str, Any]] = []
    for mode in QUANTIZE_MODES:
        out = args.out_dir / f"{args.name}-{mode}.tflite"
        command = [
            str(args.source),
            "--out",
            str(out),
            "--name",
            args.name,
            "--quantize",
            mode,
            "--representative-dir",
            str(args.data_dir / "train"),
            "--parity-dir",
            str(args.data_dir / "validation"),
            "--representative-count",
            str(args.representative_count),
        ]
        if args.legacy_python:
            command += ["--legacy-python", str(args.legacy_python)]
        if args.labels:
            command += ["--labels", args.labels]
        if convert(command) != 0:
            return 1
        manifest = json.loads(out.with_suffix(".json").read_text())
        result = evaluate(out.with_suffix(".json"), args.data_dir / "validation")
        rows.append(
            {
                "quantization": mode,
                "megabytes": round(out.stat().st_size / 1e6, 2),
                "latency_ms": round(result["latency_ms_median"], 3),
                "accuracy": round(result["accuracy"], 4),
                "tflite_runtime_2_14": manifest["runtimes"].get("tflite_runtime"),
                "top1_agreement_with_keras": manifest["parity"]["top1_agreement"],
            }
        )
    (args.out_dir / "variants.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("\n| quantization | size (MB) | latency (ms, 1 thread) | validation accuracy | tflite-runtime 2.14 |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        legacy = {True: "loads", False: "does not load"}.get(r["tflite_runtime_2_14"], "not checked")
        print(f"| {r['quantization']} | {r['megabytes']} | {r['latency_ms']} | {r['accuracy']:.2%} | {legacy} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
