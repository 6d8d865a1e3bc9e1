"""The backfill on Azure: azure/backfill_replica.py run as a Container Apps job runs its replicas (processes started at
once, no index of their own, more shards than replicas), against Azurite on loopback."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from tests.helpers import ROOT, photo_views

REPLICAS, SHARDS = 3, 5
MODEL_VERSION = json.loads((ROOT / "model" / "clothing-model.json").read_text())["version"]


def run_replicas(azurite, execution: str, **env: str) -> list[dict]:
    """Every replica of one execution at once; every shard's tally they printed."""

    def replica(_: int) -> list[dict]:
        proc = subprocess.run(
            [sys.executable, str(ROOT / "azure" / "backfill_replica.py")],
            cwd=ROOT,
            env={
                **os.environ,
                "PYTHONPATH": str(ROOT),
                "AzureWebJobsStorage": azurite.connection,
                "STORAGE_BUCKET": "catalogue",
                "BACKFILL_TASKS": str(SHARDS),
                "CONTAINER_APP_JOB_EXECUTION_NAME": execution,
                "LOG_LEVEL": "WARNING",
                **env,
            },
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]

    with ThreadPoolExecutor(max_workers=REPLICAS) as pool:
        return [tally for tallies in pool.map(replica, range(REPLICAS)) for tally in tallies]


def test_replicas_share_the_shards_each_photo_once_and_a_rerun_skips_all(azurite):
    container = azurite.service.create_container("catalogue")
    keys = []
    for i, view in enumerate(photo_views(ROOT / "samples" / "pants.jpg", 40)):
        buffer = io.BytesIO()
        view.resize((96, 96)).save(buffer, "JPEG", quality=85)
        keys.append(f"uploads/{i:03d}.jpg")
        container.upload_blob(keys[-1], buffer.getvalue())
    container.upload_blob("elsewhere/skip.jpg", b"outside the prefix: never listed")

    tallies = run_replicas(azurite, "first")
    assert sorted(t["task"] for t in tallies) == list(range(SHARDS))  # each shard claimed by exactly one replica
    assert sum(t["classified"] for t in tallies) == len(keys)
    results = sorted(b.name for b in container.list_blobs(name_starts_with="results/uploads/"))
    assert results == [f"results/{key}.json" for key in keys]
    written = json.loads(container.download_blob(results[0]).readall())
    assert written["version"] == container.get_blob_client(keys[0]).get_blob_properties().etag.strip('"')
    assert written["model"]["version"] == MODEL_VERSION and written["status"] == 200

    again = run_replicas(azurite, "second")
    assert sum(t["skipped"] for t in again) == len(keys) and sum(t["classified"] for t in again) == 0
