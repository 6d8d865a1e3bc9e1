"""Benchmark 9: `python -m cli classify` over the 3,068-photo training folder: images per second with the local
model (1 and 2 processes) and against the local functions-framework server (1, 8 and 32 requests at once).

    python -m bench.run bulk
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import DATA, ROOT, VENV_PY, publish


def classify(folder: Path, *args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [str(VENV_PY), "-m", "cli", "classify", str(folder), "--out", f"{tmp}/out.csv", "--summary-json", *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=3600,
        )
    if proc.returncode not in (0, 1):
        raise RuntimeError(proc.stderr[-2000:])
    text = proc.stderr
    return json.loads(text[text.index("{\n") : text.rindex("}") + 1])


def run(smoke: bool = False) -> dict | None:
    folder = DATA / ("validation/hat" if smoke else "train")
    if not folder.is_dir():
        print(f"bulk: skipped, the dataset is absent ({folder})", file=sys.stderr)
        return None
    from scripts.local_server import start_functions_framework, stop_server

    rows = []
    for workers in (1, 2):
        summary = classify(folder, "--workers", str(workers))
        rows.append(
            {
                "mode": f"local, {workers} process{'es' if workers > 1 else ''}",
                "images": summary["images"],
                "errors": summary["errors"],
                "images_per_second": summary["images_per_second"],
            }
        )
    server, url = start_functions_framework(VENV_PY.parent, ROOT / "gcp" / "main.py", ROOT, {"LOG_LEVEL": "WARNING"})
    try:
        for concurrency in (1, 8, 32):
            summary = classify(folder, "--endpoint", url, "--concurrency", str(concurrency))
            rows.append(
                {
                    "mode": f"functions-framework, {concurrency} at once",
                    "images": summary["images"],
                    "errors": summary["errors"],
                    "images_per_second": summary["images_per_second"],
                }
            )
    finally:
        stop_server(server)
    result = {"folder": str(folder.relative_to(DATA)), "rows": rows}
    return publish(
        "bulk",
        result,
        f"python -m cli classify, {rows[0]['images']} photos (images/s)",
        [r["mode"] for r in rows],
        [r["images_per_second"] for r in rows],
        "images/s",
    )


if __name__ == "__main__":
    print(json.dumps(run("--smoke" in sys.argv), indent=2))
