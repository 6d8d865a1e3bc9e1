"""core.storage's ObjectStore on a Cloud Storage bucket, for the storage trigger (main.py) and the backfill job
(backfill.py): the same reads and writes for both."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from core.storage import ObjectGone, StoredObject, Superseded


class GcsBucket:
    """core.storage's ObjectStore on one Cloud Storage bucket, whose client is made when first needed (a skipped
    object needs none)."""

    caller = "gcp-storage"

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect

    @functools.cached_property
    def bucket(self) -> Any:
        return self._connect()

    def open(self, key: str) -> StoredObject | None:
        from google.api_core.exceptions import NotFound as BlobNotFound

        blob = self.bucket.blob(key)
        try:
            blob.reload()  # its size now: the object may have changed since the event
        except BlobNotFound:
            return None
        return StoredObject(
            key, blob.size, lambda: _download(blob), version=str(blob.generation), encoding=blob.content_encoding
        )

    def write(self, name: str, body: bytes) -> None:
        self.bucket.blob(name).upload_from_string(body, content_type="application/json")

    def read_result(self, name: str) -> bytes | None:
        from google.api_core.exceptions import NotFound as BlobNotFound

        try:
            return bytes(self.bucket.blob(name).download_as_bytes())
        except BlobNotFound:
            return None

    def superseded(self, stored: StoredObject) -> bool:
        from google.api_core.exceptions import NotFound as BlobNotFound

        blob = self.bucket.blob(stored.key)
        try:
            blob.reload()
        except BlobNotFound:  # gone: no newer version to defer to
            return False
        return str(blob.generation) != stored.version


def _download(blob: Any) -> bytes:
    """The bytes as stored (raw: a gzip-encoded object is not inflated by the client, core/storage.py bounds that),
    of the generation whose size was checked."""
    from google.api_core.exceptions import NotFound as BlobNotFound
    from google.api_core.exceptions import PreconditionFailed

    try:
        return blob.download_as_bytes(raw_download=True, if_generation_match=blob.generation)
    except BlobNotFound:  # deleted between the size check and the read: as if gone before
        raise ObjectGone from None
    except PreconditionFailed:  # replaced meanwhile: the newer generation's own event classifies it
        raise Superseded from None
