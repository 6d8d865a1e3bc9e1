"""The backfill on Azure: a Container Apps job whose replicas classify a container's photos shard by shard
(core/backfill.py), reading each photo from Blob Storage and writing its result where the blob trigger writes it.

Container Apps gives a job's replicas no index, so the shards are claimed: each replica takes the first shard whose
claim blob (``<results prefix>_backfill/<execution>/claim-<i>``) it can create (a conditional create: exactly one
replica wins each), classifies it, writes its tally, and takes the next, until none is left. A fast replica takes
more shards than a slow one; a shard whose replica fails is given up (its claim deleted) for another to take, and
the replica exits 1 so the job retries it. A rerun skips every photo already answered for the current model.

    AzureWebJobsStorage=<connection string> STORAGE_BUCKET=photos BACKFILL_TASKS=20 python backfill_replica.py

(``STORAGE_BUCKET`` names the container; ``BACKFILL_PREFIX`` defaults to the uploads prefix.)
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from core.backfill import Listed, Tally, classify_listed, shard
from core.service import Service, get_service
from core.storage import ObjectGone, StoredObject, Superseded


class BlobContainer:
    """core.storage's ObjectStore (and the backfill's result reader) on one Blob Storage container."""

    caller = "azure-blob"

    def __init__(self, container: Any) -> None:
        self.container = container

    def open(self, key: str) -> StoredObject | None:
        from azure.core.exceptions import ResourceNotFoundError

        blob = self.container.get_blob_client(key)
        try:
            properties = blob.get_blob_properties()
        except ResourceNotFoundError:
            return None
        etag = _unquoted(properties.etag)
        encoding = properties.content_settings.content_encoding
        return StoredObject(key, properties.size, lambda: _download(blob, etag), version=etag, encoding=encoding)

    def write(self, name: str, body: bytes) -> None:
        from azure.storage.blob import ContentSettings

        settings = ContentSettings(content_type="application/json")
        self.container.upload_blob(name, body, overwrite=True, content_settings=settings)

    def superseded(self, stored: StoredObject) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return _unquoted(self.container.get_blob_client(stored.key).get_blob_properties().etag) != stored.version
        except ResourceNotFoundError:  # gone: no newer version to defer to
            return False

    def read_result(self, name: str) -> bytes | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return bytes(self.container.download_blob(name).readall())
        except ResourceNotFoundError:
            return None

    def claim(self, name: str) -> bool:
        """Create ``name`` unless it exists: True for the one caller that created it."""
        from azure.core.exceptions import ResourceExistsError

        try:
            self.container.upload_blob(name, b"", overwrite=False)
        except ResourceExistsError:
            return False
        return True


def _unquoted(etag: str) -> str:
    """An ETag as a listing gives it: the properties call quotes it, the listing does not."""
    return etag.strip('"')


def _download(blob: Any, etag: str) -> bytes:
    """The bytes of the version whose size was checked."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

    try:
        condition = MatchConditions.IfNotModified
        return bytes(blob.download_blob(etag=f'"{etag}"', match_condition=condition).readall())
    except ResourceNotFoundError:
        raise ObjectGone from None
    except ResourceModifiedError:  # replaced meanwhile: a newer version, answered by its own event or rerun
        raise Superseded from None


def run_shards(store: BlobContainer, listing: list[Listed], service: Service, tasks: int, run: str) -> int:
    """Claim and classify shards until none is left; the exit status (1 when a shard had failures)."""
    status = 0
    for index in range(tasks):
        if not store.claim(f"{run}/claim-{index}"):
            continue
        force = os.environ.get("BACKFILL_FORCE", "").lower() in ("1", "true", "yes")
        try:
            tally: Tally = classify_listed(store, shard(listing, index, tasks), service, force)
        except Exception:
            store.container.delete_blob(f"{run}/claim-{index}")  # another replica, or the retry, takes it
            raise
        summary = {"task": index, "tasks": tasks, **tally.as_dict()}
        store.write(f"{run}/task-{index}.json", json.dumps(summary).encode())
        print(json.dumps(summary), flush=True)
        status = max(status, 1 if tally.failed else 0)
    return status


def main() -> int:
    from azure.storage.blob import ContainerClient

    service = get_service()
    settings = service.settings
    connection = os.environ.get("AzureWebJobsStorage", "")
    if not (connection and settings.storage_bucket):
        print("backfill: set AzureWebJobsStorage and STORAGE_BUCKET (the container)", file=sys.stderr)
        return 2
    container = ContainerClient.from_connection_string(connection, settings.storage_bucket)
    prefix = os.environ.get("BACKFILL_PREFIX", settings.storage_uploads_prefix)
    listing = [Listed(b.name, _unquoted(b.etag), b.size) for b in container.list_blobs(name_starts_with=prefix)]
    execution = os.environ.get("CONTAINER_APP_JOB_EXECUTION_NAME", "local")
    run = f"{settings.storage_results_prefix}_backfill/{execution}"
    return run_shards(BlobContainer(container), listing, service, int(os.environ.get("BACKFILL_TASKS", "1")), run)


if __name__ == "__main__":
    sys.exit(main())
