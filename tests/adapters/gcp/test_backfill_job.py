"""The backfill on Google Cloud: gcp/backfill.py run as Cloud Run runs a job's tasks (one process per task, each
with its CLOUD_RUN_TASK_INDEX of CLOUD_RUN_TASK_COUNT), against gcp-storage-emulator on loopback."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from tests.adapters.gcp.conftest import BUCKET
from tests.helpers import ROOT, photo_views

TASKS = 3
MODEL_VERSION = json.loads((ROOT / "model" / "clothing-model.json").read_text())["version"]


def run_tasks(emulator: str, execution: str, **env: str) -> list[dict]:
    """Every task of one execution at once; each task's printed tally, in index order."""

    def task(index: int) -> dict:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "gcp" / "backfill.py")],
            cwd=ROOT,
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "STORAGE_EMULATOR_HOST": emulator,
                "STORAGE_BUCKET": BUCKET,
                "CLOUD_RUN_TASK_INDEX": str(index),
                "CLOUD_RUN_TASK_COUNT": str(TASKS),
                "CLOUD_RUN_EXECUTION": execution,
                "LOG_LEVEL": "WARNING",
                **env,
            },
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    with ThreadPoolExecutor(max_workers=TASKS) as pool:
        return list(pool.map(task, range(TASKS)))


def test_every_photo_is_classified_by_exactly_one_task_and_a_rerun_skips_all(emulator, bucket):
    keys = []
    for i, view in enumerate(photo_views(ROOT / "samples" / "t-shirt.jpg", 45)):
        buffer = io.BytesIO()
        view.resize((96, 96)).save(buffer, "JPEG", quality=85)
        keys.append(f"uploads/backfill/{i:03d}.jpg")
        bucket.blob(keys[-1]).upload_from_string(buffer.getvalue(), content_type="image/jpeg")
    bucket.blob("uploads/backfill/readme.txt").upload_from_string(b"not a photo")

    tallies = run_tasks(emulator, "first", BACKFILL_PREFIX="uploads/backfill/")
    assert sum(t["classified"] for t in tallies) == len(keys) and sum(t["ignored"] for t in tallies) == 1
    assert all(t["classified"] > 0 for t in tallies), [t["classified"] for t in tallies]  # every shard had work
    assert sum(t["labels"].get("t-shirt", 0) for t in tallies) >= len(keys) * 0.9
    results = sorted(b.name for b in bucket.list_blobs(prefix="results/uploads/backfill/"))
    assert results == [f"results/{key}.json" for key in keys]
    written = json.loads(bucket.blob(results[0]).download_as_bytes())
    assert written["version"] == str(bucket.get_blob(keys[0]).generation)
    assert written["model"]["version"] == MODEL_VERSION
    summaries = sorted(b.name for b in bucket.list_blobs(prefix="results/_backfill/first/"))
    assert summaries == [f"results/_backfill/first/task-{i}.json" for i in range(TASKS)]

    again = run_tasks(emulator, "second", BACKFILL_PREFIX="uploads/backfill/")
    assert sum(t["skipped"] for t in again) == len(keys) and sum(t["classified"] for t in again) == 0
    forced = run_tasks(emulator, "third", BACKFILL_PREFIX="uploads/backfill/", BACKFILL_FORCE="true")
    assert sum(t["classified"] for t in forced) == len(keys)
