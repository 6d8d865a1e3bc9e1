"""Benchmark 5: peak RSS by image size and batch size, and throughput with batches of 1, 4 and 16 images."""

from __future__ import annotations

import json
import subprocess
import sys

from bench import models
from bench.common import ROOT, VENV_PY, WORK, publish, summarize

WORKER = """
import base64, json, os, sys, time
os.environ["LOG_LEVEL"] = "WARNING"
from core.contract import Request
from core.service import get_service
service = get_service()
images = [base64.b64encode(open(p, "rb").read()).decode() for p in sys.argv[2:]]
batch = int(sys.argv[1])
payload = {"images": images[:batch]} if batch > 1 else {"image": images[0]}
times = []
for i in range(int(os.environ.get("ROUNDS", "10")) + 2):
    t = time.perf_counter()
    response = service.handle(Request.invocation(payload, caller="bench"))
    assert response.status == 200, response.body
    if i >= 2:
        times.append((time.perf_counter() - t) * 1000)
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would include the parent's size.
peak_kb = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
print(json.dumps({"ms": times, "peak_rss_mb": peak_kb / 1024}))
"""


def photo_of(megapixels: float):
    from PIL import Image

    path = WORK / f"photo-{megapixels}mp.jpg"
    if not path.exists():
        width = int((megapixels * 1e6 * 3 / 4) ** 0.5)
        with Image.open(models.photos()["0.2MP"]) as img:
            img.convert("RGB").resize((width, width * 4 // 3), Image.Resampling.BICUBIC).save(path, quality=90)
    return path


def measure(batch: int, photo, rounds: int) -> dict:
    proc = subprocess.run(
        [str(VENV_PY), "-c", WORKER, str(batch), *[str(photo)] * batch],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={"ROUNDS": str(rounds), "PATH": "/usr/bin"},
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(smoke: bool = False) -> dict:
    rounds = 2 if smoke else 15
    by_size = []
    for mp in [0.2] if smoke else [0.2, 1.0, 4.0, 12.0]:
        data = measure(1, photo_of(mp), rounds)
        by_size.append({"megapixels": mp, "peak_rss_mb": round(data["peak_rss_mb"], 1), "ms": summarize(data["ms"])})
    by_batch = []
    for batch in [1, 4] if smoke else [1, 4, 16]:
        data = measure(batch, photo_of(0.2), rounds)
        ms = summarize(data["ms"])
        by_batch.append(
            {
                "batch": batch,
                "peak_rss_mb": round(data["peak_rss_mb"], 1),
                "ms": ms,
                "images_per_s": round(batch * 1000 / ms["median"], 1),
            }
        )
    result = {"model": "default (int8)", "by_image_size": by_size, "by_batch": by_batch}
    return publish(
        "memory",
        result,
        "Peak RSS of a fresh process by image size (default model)",
        [f"{r['megapixels']} MP" for r in by_size],
        [r["peak_rss_mb"] for r in by_size],
        "MB",
    )


if __name__ == "__main__":
    print(json.dumps(run("--smoke" in sys.argv), indent=2))
