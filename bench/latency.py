"""Benchmarks 1 and 2: warm end-to-end latency split by stage, this project vs the book's stack.

Every request fetches its photo from a loopback HTTP server, as a URL request would.
"""

from __future__ import annotations

import json

from bench import models
from bench.common import LEGACY_PY, VENV_PY, ImageServer, publish, run_json, summarize
from core.manifest import load_manifest


def measure(smoke: bool) -> dict:
    # Small-model requests take ~2 ms, where one scheduler hiccup moves a median of 40: they get 200.
    n_small, n_large = (3, 3) if smoke else (200, 40)
    photos = models.photos()
    server = ImageServer(photos["0.2MP"].parent)
    url = {size: f"{server.url}/{path.name}" for size, path in photos.items()}
    configs = [  # (name, manifest, photo, threads); a name is "<network> <quantization>"
        ("default int8", models.DEFAULT_INT8, "0.2MP", 1),
        ("default float32", models.default_float32(), "0.2MP", 1),
    ]
    if not smoke:
        configs += [
            ("default int8", models.DEFAULT_INT8, "0.85MP", 1),
            ("xception-299 float32", models.xception("float32"), "0.2MP", 1),
            ("xception-299 float32", models.xception("float32"), "0.2MP", 2),
            ("xception-299 int8", models.xception("int8"), "0.2MP", 1),
            ("xception-299 int8", models.xception("int8"), "0.2MP", 2),
            ("xception-299 float32", models.xception("float32"), "0.85MP", 1),
            ("xception-299 dynamic", models.xception("dynamic"), "0.85MP", 1),
            ("xception-299 int8", models.xception("int8"), "0.85MP", 1),
        ]
    rows = []
    try:
        for name, manifest, photo, threads in configs:
            n = n_small if name.startswith("default") else n_large
            result = run_json(VENV_PY, "worker_ours.py", manifest, url[photo], n, threads)
            rows.append(
                {
                    "stack": "this project",
                    "model": name,
                    "photo": photo,
                    "threads": threads,
                    "runtime": result["runtime"],
                    "ms": {k: summarize(v) for k, v in result["samples_ms"].items()},
                }
            )
        book_configs = [("default float32", models.default_float32())]
        if not smoke:
            book_configs.append(("xception-299 float32", models.xception("float32")))
        for name, book_model in book_configs if LEGACY_PY.exists() else []:
            result = run_json(
                LEGACY_PY,
                "worker_book.py",
                load_manifest(book_model).model_path,
                url["0.2MP"],
                n_small if name.startswith("default") else n_large,
                models.input_size(book_model),
            )
            rows.append(
                {
                    "stack": "book (tflite-runtime 2.14)",
                    "model": name,
                    "photo": "0.2MP",
                    "threads": 1,
                    "runtime": result["runtime"],
                    "ms": {k: summarize(v) for k, v in result["samples_ms"].items()},
                }
            )
    finally:
        server.close()
    return {"rows": rows, "comparison": compare(rows)}


def compare(rows) -> list:
    """For each model the book's stack ran: its end-to-end median over ours, same network and photo, for
    the identical file (same quantization) and for the network's other conversions."""
    out = []
    for book in (r for r in rows if r["stack"].startswith("book")):
        network = book["model"].split()[0]
        speedups = {
            f"{r['model'].split()[1]}, {r['threads']} thread(s)": round(
                book["ms"]["end_to_end"]["median"] / r["ms"]["end_to_end"]["median"], 2
            )
            for r in rows
            if r["stack"] == "this project" and r["model"].split()[0] == network and r["photo"] == book["photo"]
        }
        out.append({"model": book["model"], "photo": book["photo"], "speedup_over_book": speedups})
    return out


def run(smoke: bool = False) -> dict:
    result = measure(smoke)
    labels = [f"{r['stack'][:12]} | {r['model']} | {r['photo']} | {r['threads']}t" for r in result["rows"]]
    return publish(
        "latency",
        result,
        "Warm end-to-end latency per request (median)",
        labels,
        [r["ms"]["end_to_end"]["median"] for r in result["rows"]],
        "ms",
    )


if __name__ == "__main__":
    import sys

    print(json.dumps(run("--smoke" in sys.argv)["comparison"], indent=2))
