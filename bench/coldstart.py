"""Benchmark 3: cold start, a fresh process from start to first answer (imports + model load + first inference).

Three handlers on the same photo: this project (LiteRT), the book's stack (tflite-runtime 2.14), and a handler
on full TensorFlow/Keras (what TF Lite saves). Peak RSS of each process is recorded too.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import models
from bench.common import LEGACY_PY, ROOT, VENV_PY, publish, summarize
from core.manifest import load_manifest

# Appended to each snippet: its own peak RSS in kB (VmHWM), printed last.
PRINT_PEAK_RSS = "print(open('/proc/self/status').read().split('VmHWM:')[1].split()[0])\n"
OURS = (
    """
import json, sys, time
started = time.perf_counter()
from handlers.aws import lambda_handler  # Lambda's init phase: settings read, model loaded and run once
ready = time.perf_counter()
answer = lambda_handler({"image": sys.argv[1]}, None)
print("SPLIT", json.dumps({"init_ms": (ready - started) * 1000,
                          "first_request_ms": (time.perf_counter() - ready) * 1000}))
print(json.dumps(answer))
"""
    + PRINT_PEAK_RSS
)
BOOK = (
    """
import base64, io, json, sys
from bench import book_handler as book
from PIL import Image
X = book.preprocessor.convert_to_tensor(Image.open(io.BytesIO(base64.b64decode(sys.argv[1]))))
book.interpreter.set_tensor(book.input_index, X)
book.interpreter.invoke()
print(json.dumps(dict(zip(book.CLASSES, book.interpreter.get_tensor(book.output_index)[0].tolist()))))
"""
    + PRINT_PEAK_RSS
)
FULL_TF = (
    """
import base64, io, json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
from keras_image_helper import create_preprocessor
from PIL import Image
from lab.labels import CLOTHING_LABELS
model = keras.models.load_model(sys.argv[2], compile=False)
size = int(sys.argv[3])
X = create_preprocessor("xception", target_size=(size, size)).convert_to_tensor(
    Image.open(io.BytesIO(base64.b64decode(sys.argv[1]))))
print(json.dumps(dict(zip(CLOTHING_LABELS, model(X, training=False).numpy()[0].tolist()))))
"""
    + PRINT_PEAK_RSS
)


def cold_run(python, code, *args, env=None) -> tuple[float, float, float, dict | None]:
    """(wall ms from spawn to exit, CPU ms, peak RSS MB, the snippet's own init / first-request split if it prints
    one) of one fresh process. CPU counts every thread: where
    Lambda gives a fraction of a vCPU, CPU time rather than wall time on idle cores is what a cold start waits
    for. The snippet prints its VmHWM last (ru_maxrss would not do: Linux keeps it across exec, so a child
    reports at least its parent's size)."""
    # as deployed: without the OPENBLAS_NUM_THREADS that importing core set in this process (see core/__init__)
    inherited = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        [str(python), "-c", code, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**inherited, "LOG_LEVEL": "WARNING", **(env or {})},
    )
    wall = (time.perf_counter() - started) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1000
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    lines = proc.stdout.strip().splitlines()
    *_, answer, peak_kb = lines
    json.loads(answer)
    split = next((json.loads(line[len("SPLIT ") :]) for line in lines if line.startswith("SPLIT ")), None)
    return wall, cpu, int(peak_kb) / 1024, split


def run(smoke: bool = False) -> dict:
    import base64

    n = 2 if smoke else 7
    photo = base64.b64encode(models.photos()["0.2MP"].read_bytes()).decode()
    float_manifest = models.default_float32()
    float_model = load_manifest(float_manifest).model_path
    size = models.input_size(float_manifest)
    handlers: list[tuple[str, Path, str, tuple[Any, ...], dict[str, str] | None]] = [
        ("this project (LiteRT, int8 default model)", VENV_PY, OURS, (photo,), None),
        (
            "this project (LiteRT, float32 default model)",
            VENV_PY,
            OURS,
            (photo,),
            {"MODEL_MANIFEST": str(float_manifest)},
        ),
    ]
    if LEGACY_PY.exists():
        handlers.append(
            (
                "book's stack (tflite-runtime 2.14, float32)",
                LEGACY_PY,
                BOOK,
                (photo,),
                {"BOOK_MODEL": str(float_model), "BOOK_SIZE": str(size)},
            )
        )
    handlers.append(
        (
            "full TensorFlow + Keras handler",
            VENV_PY,
            FULL_TF,
            (photo, ROOT / "model" / "clothing-model.keras", size),
            None,
        )
    )
    rows: list[dict[str, Any]] = []
    for name, python, code, args, env in handlers:
        runs = [cold_run(python, code, *args, env=env) for _ in range(n)]
        row = {
            "handler": name,
            "ms": summarize([wall for wall, _, _, _ in runs]),
            "cpu_ms": summarize([cpu for _, cpu, _, _ in runs]),
            "peak_rss_mb": round(max(rss for _, _, rss, _ in runs), 1),
        }
        splits = [split for *_, split in runs if split]
        if splits:  # this project's: the model loads in the init phase, so the first request finds it ready
            row["init_ms"] = summarize([split["init_ms"] for split in splits])
            row["first_request_ms"] = summarize([split["first_request_ms"] for split in splits])
        rows.append(row)
    result = {
        "rows": rows,
        "note": "wall time from process spawn to exit, including the interpreter's own start; "
        "cpu_ms: user + system time of all its threads",
    }
    return publish(
        "coldstart",
        result,
        "Cold start: fresh process to first answer (median)",
        [r["handler"] for r in rows],
        [r["ms"]["median"] for r in rows],
        "ms",
    )


if __name__ == "__main__":
    print(json.dumps(run("--smoke" in sys.argv)["rows"], indent=2))
