"""Photos classified as they land in storage (S3: handlers/s3_uploads.py; Cloud Storage and Blob Storage:
``classify_upload`` in gcp/main.py and azure/function_app.py), by these rules, the same on every cloud: which
objects to classify, where each one's result goes, and the result itself. The adapters only read and write
objects; the answer is the API's own, through the same service (limits, orientation, errors).

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
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from .errors import NotFound, PayloadTooLarge, ServiceError
from .http import Headers, Request
from .images import IMAGE_SUFFIXES
from .service import Service
from .settings import Settings

log = logging.getLogger("core")
# The longest object name, in bytes of UTF-8: S3 and Cloud Storage (1,024 bytes); Azure Blob Storage allows 1,024
# characters, which is never fewer bytes.
MAX_KEY_BYTES = 1024


class RetryLater(RuntimeError):
    """The service could not answer for this photo (a 5xx): the event must fail, so that the platform retries it."""

    def __init__(self, key: str, result: dict[str, Any]) -> None:
        super().__init__(f"{key!r}: the service answered {result['status']}: {json.dumps(result['answer'])[:300]}")
        self.result = result


@dataclass(frozen=True)
class StoredPhoto:
    key: str  # decoded: S3 events carry keys URL-encoded
    size: int | None = None  # bytes, when the event says


def why_skipped(key: str, service: Service) -> str | None:
    """Why this object is not classified (logged as a "skipped" event), or None when it is."""
    reason = _skip_reason(key, service.settings)
    if reason:
        log.info(json.dumps({"severity": "INFO", "event": "skipped", "key": key, "reason": reason}))
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


def too_large(photo: StoredPhoto, service: Service) -> dict[str, Any] | None:
    """The error result for an object over MAX_IMAGE_BYTES, known from its size (as the store says now, not as the
    event said) before reading a byte."""
    limit = service.settings.max_image_bytes
    if photo.size is not None and photo.size > limit:
        return error_result(photo.key, PayloadTooLarge(f"the object has {photo.size} bytes; the limit is {limit}"))
    return None


def missing(key: str) -> dict[str, Any]:
    """The result for an object gone before it was read (deleted, or overwritten by a delete marker)."""
    return error_result(key, NotFound("the object no longer exists"))


def error_result(key: str, error: ServiceError) -> dict[str, Any]:
    return {"key": key, "status": error.status, "answer": error.to_dict()}


def classify_object(service: Service, key: str, data: bytes, request_id: str | None, caller: str) -> dict[str, Any]:
    """The API's answer for these bytes, as if they had been POSTed raw: the result object's content. A 5xx
    raises RetryLater instead: it says nothing about the photo."""
    request = Request(
        method="POST",
        headers=Headers({"Content-Type": "application/octet-stream"}),
        body=data,
        request_id=request_id,
        caller=caller,
    )
    response = service.handle(request)
    result = {"key": key, "status": response.status, "answer": response.body}
    if response.status >= 500:
        raise RetryLater(key, result)
    return result
