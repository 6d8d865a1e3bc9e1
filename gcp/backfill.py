"""The backfill on Google Cloud: a Cloud Run job whose tasks each classify their shard of the bucket's listing
(core/backfill.py), reading each photo from the bucket and writing its result where the storage trigger writes it.

Cloud Run gives every task ``CLOUD_RUN_TASK_INDEX`` and ``CLOUD_RUN_TASK_COUNT``; each task lists the prefix itself
and keeps the keys whose hash falls in its shard, so no coordinator is needed and every photo is one task's.
A task with failures exits 1, so Cloud Run retries it (``--max-retries``); the retry skips what was answered.

    STORAGE_BUCKET=NAME [BACKFILL_PREFIX=uploads/] [BACKFILL_FORCE=true] python backfill.py

Each task writes its tally to ``<results prefix>_backfill/<execution>/task-<index>.json`` and prints it.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from gcs_bucket import GcsBucket  # beside this file, in the repository and in the bundle

from core.backfill import Listed, classify_listed, shard
from core.service import get_service


def main() -> int:
    from google.cloud import storage

    service = get_service()
    settings = service.settings
    if not settings.storage_bucket:
        print("backfill: set STORAGE_BUCKET to the bucket to classify", file=sys.stderr)
        return 2
    index = int(os.environ.get("CLOUD_RUN_TASK_INDEX", "0"))
    count = int(os.environ.get("CLOUD_RUN_TASK_COUNT", "1"))
    prefix = os.environ.get("BACKFILL_PREFIX", settings.storage_uploads_prefix)
    force = os.environ.get("BACKFILL_FORCE", "").lower() in ("1", "true", "yes")
    client = storage.Client()
    bucket = client.bucket(settings.storage_bucket)
    listing = (Listed(blob.name, str(blob.generation), blob.size) for blob in client.list_blobs(bucket, prefix=prefix))
    store = GcsBucket(lambda: bucket)
    tally = classify_listed(store, shard(listing, index, count), service, force)
    summary: dict[str, Any] = {"task": index, "tasks": count, "prefix": prefix, **tally.as_dict()}
    execution = os.environ.get("CLOUD_RUN_EXECUTION", "local")
    name = f"{settings.storage_results_prefix}_backfill/{execution}/task-{index}.json"
    store.write(name, json.dumps(summary).encode())
    print(json.dumps(summary))
    return 1 if tally.failed else 0


if __name__ == "__main__":
    sys.exit(main())
