"""Photos classified as they land in storage, by one workflow (``process_upload``) and these rules, the same on
every cloud: which objects to classify, where each one's result goes, and the result itself. Each cloud implements
``ObjectStore`` (open a photo, write a result: handlers/s3_uploads.py, gcp/main.py, azure/function_app.py) and
nothing else; the answer is the API's own, through the same service (limits, orientation, errors).

- Only keys under the uploads prefix with an image suffix are classified; keys under the results prefix never
  are, whatever the trigger says (a trigger on the whole bucket would otherwise classify its own results, and
  their results, forever).
- The result object ``<results prefix><original key>.json`` holds ``{"key", "status", "answer"}``: the API's
  status and JSON answer for the photo's own problems (4xx) included. Writing it twice writes the same thing
  (deliveries are at-least-once). A key whose result name would pass the store's 1,024-byte limit gets a
  shortened name that ends in a hash of the full key (the result's "key" says which photo it is).
- The object is judged as it is when the event is processed, never by the event's description of it: a late or
  repeated event for a key that now holds another photo classifies that photo.
- The service's own failures (5xx: a bad setting, a broken model, too busy) are not a photo's result: they raise
  ``RetryLater``, so the platform retries the event and, past its retries, sends it to its failure queue.
- The result names the version of the photo it describes (S3's and Blob Storage's ETag, Cloud Storage's
  generation) and the model that answered. An invocation whose photo was replaced while it ran writes nothing:
  the store holds a newer version, whose own event writes its result (an older answer never lands last).
- An object stored compressed (``Content-Encoding: gzip``, as ``gcloud storage cp -Z`` stores it) is read as
  stored and decompressed here, never past MAX_IMAGE_BYTES: a small upload cannot inflate into the instance's
  memory.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Protocol

from .contract import Headers, Query, Request
from .errors import InvalidImage, NotFound, PayloadTooLarge, ServiceError
from .images import IMAGE_SUFFIXES
from .logs import log_event
from .service import Service
from .settings import Settings

# The longest object name, in bytes of UTF-8: S3 and Cloud Storage (1,024 bytes); Azure Blob Storage allows 1,024
# characters, which is never fewer bytes.
MAX_KEY_BYTES = 1024


class RetryLater(RuntimeError):
    """The service could not answer for this photo (a 5xx): the event must fail, so that the platform retries it."""

    def __init__(self, key: str, result: dict[str, Any]) -> None:
        super().__init__(f"{key!r}: the service answered {result['status']}: {json.dumps(result['answer'])[:300]}")
        self.result = result


class ObjectGone(Exception):
    """Raised by a StoredObject's ``read`` when the object was deleted after it was opened."""


class Superseded(Exception):
    """Raised by a StoredObject's ``read`` when the key holds another version than the one opened."""


@dataclass(frozen=True)
class StoredObject:
    """A photo as the store holds it now: its key as stored, its size (None when the store does not say), its
    version, its content encoding, and how to read its bytes as stored; ``discard`` lets go of a body that will
    not be read."""

    key: str
    size: int | None
    read: Callable[[], bytes]
    discard: Callable[[], None] = lambda: None
    version: str | None = None
    encoding: str | None = None


class ObjectStore(Protocol):
    """One cloud's bucket, as the workflow needs it. A store failure raises (the platform retries the event)."""

    caller: str  # for the log line: aws-s3, gcp-storage, azure-blob

    def open(self, key: str) -> StoredObject | None:
        """The object under ``key``, or None when it no longer exists."""
        ...

    def write(self, name: str, body: bytes) -> None:
        """Store a result object under ``name``."""
        ...

    def superseded(self, stored: StoredObject) -> bool:
        """Whether the key now holds a newer version than ``stored`` (False where the store cannot tell)."""
        ...


@dataclass(frozen=True)
class Outcome:
    key: str
    result_name: str | None = None  # where the result went; None when skipped
    skipped: str | None = None  # why the object is not classified
    result: dict[str, Any] | None = None  # what was written


def process_upload(store: ObjectStore, key: str, service: Service, request_id: str | None = None) -> Outcome:
    """The whole workflow for one new object: skip what is not a photo to classify, judge the object as it is now,
    write its result. Raises RetryLater (the service's own 5xx) or the store's error, for the platform to retry."""
    reason = why_skipped(key, service)
    if reason:
        return Outcome(key, skipped=reason)
    stored = store.open(key)
    try:
        result = missing(key) if stored is None else _judge(stored, service, request_id, store.caller)
        if stored is not None and store.superseded(stored):
            raise Superseded
    except Superseded:
        log_event("superseded", key=key, reason="the key holds a newer version; its own event writes the result")
        return Outcome(key, skipped="superseded by a newer version")
    manifest = service.classifier.loaded_manifest() if service.classifier.ready else None
    result["version"] = stored.version if stored else None
    result["model"] = {"name": manifest.name, "version": manifest.version} if manifest else None
    name = result_key(result["key"], service)
    store.write(name, json.dumps(result).encode())
    return Outcome(result["key"], result_name=name, result=result)


def _judge(stored: StoredObject, service: Service, request_id: str | None, caller: str) -> dict[str, Any]:
    """The result for a stored object: too large by its size now (before reading a byte), else the API's answer."""
    limit = service.settings.max_image_bytes
    if stored.size is not None and stored.size > limit:
        stored.discard()
        return error_result(stored.key, PayloadTooLarge(f"the object has {stored.size} bytes; the limit is {limit}"))
    try:
        data = stored.read()
    except ObjectGone:
        return missing(stored.key)
    if (stored.encoding or "").strip().lower() == "gzip":
        try:
            data = gunzip_capped(data, limit)
        except ServiceError as error:
            return error_result(stored.key, error)
    return classify_object(service, stored.key, data, request_id, caller)


def gunzip_capped(data: bytes, limit: int) -> bytes:
    """``data`` decompressed, refused (413) as soon as it passes ``limit`` bytes: never inflated whole first."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # the gzip wrapper, as Content-Encoding names it
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InvalidImage(f"the object is stored gzip-encoded but does not decompress: {exc}") from None
    if len(out) > limit:
        raise PayloadTooLarge(f"the object decompresses to more than {limit} bytes (Content-Encoding: gzip)")
    return out


def why_skipped(key: str, service: Service) -> str | None:
    """Why this object is not classified (logged as a "skipped" event), or None when it is."""
    reason = _skip_reason(key, service.settings)
    if reason:
        log_event("skipped", key=key, reason=reason)
    return reason


def _skip_reason(key: str, settings: Settings) -> str | None:
    if key.endswith("/"):
        return "a folder marker, not a photo"
    if key.startswith(settings.storage_results_prefix):
        return "a result object: never classified (no loop)"
    if not key.startswith(settings.storage_uploads_prefix):
        return f"outside {settings.storage_uploads_prefix}"
    if PurePosixPath(key).suffix.lower() not in IMAGE_SUFFIXES:
        return "not an image suffix"
    return None


def result_key(key: str, service: Service) -> str:
    """``<results prefix><key>.json``, or, where that would pass MAX_KEY_BYTES, as much of the key as fits, then
    ``~`` and the first 16 hex digits of the full key's SHA-256, then ``.json``: never a name the store refuses."""
    prefix = service.settings.storage_results_prefix
    name = f"{prefix}{key}.json"
    if len(name.encode()) <= MAX_KEY_BYTES:
        return name
    tag = "~" + hashlib.sha256(key.encode()).hexdigest()[:16] + ".json"
    room = MAX_KEY_BYTES - len(prefix.encode()) - len(tag)
    kept = key.encode()[:room].decode("utf-8", "ignore")  # whole characters only
    return f"{prefix}{kept}{tag}"


def missing(key: str) -> dict[str, Any]:
    """The result for an object gone before it was read (deleted, or overwritten by a delete marker)."""
    return error_result(key, NotFound("the object no longer exists"))


def error_result(key: str, error: ServiceError) -> dict[str, Any]:
    return {"key": key, "status": error.status, "answer": error.to_dict()}


def classify_object(service: Service, key: str, data: bytes, request_id: str | None, caller: str) -> dict[str, Any]:
    """The API's answer for these bytes, as if they had been POSTed raw with ``?details=true`` (the scores, the top
    label and the verdict): the result object's content. A 5xx raises RetryLater instead: it says nothing about
    the photo."""
    request = Request(
        method="POST",
        headers=Headers({"Content-Type": "application/octet-stream"}),
        query=Query({"details": "true"}),
        body=data,
        request_id=request_id,
        caller=caller,
    )
    response = service.handle(request)
    result = {"key": key, "status": response.status, "answer": response.body}
    if response.status >= 500:
        raise RetryLater(key, result)
    return result
