"""Photos classified as they land in storage (S3: handlers/s3_uploads.py; Cloud Storage and Blob Storage:
``classify_upload`` in gcp/main.py and azure/function_app.py), by these rules, the same on every cloud: which
objects to classify, where each one's result goes, and the result itself. The adapters only read and write
objects; the answer is the API's own, through the same service (limits, orientation, errors).

- Only keys under the uploads prefix with an image suffix are classified; keys under the results prefix never
  are, whatever the trigger says (a trigger on the whole bucket would otherwise classify its own results, and
  their results, forever).
- The result object ``<results prefix><original key>.json`` holds ``{"key", "status", "answer"}``: the API's
  status and JSON answer, an error answer included. Writing it twice writes the same thing (deliveries are
  at-least-once).
"""

from __future__ import annotations

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
    if key.startswith(settings.storage_results_prefix):
        return "a result object: never classified (no loop)"
    if not key.startswith(settings.storage_uploads_prefix):
        return f"outside {settings.storage_uploads_prefix}"
    if PurePosixPath(key).suffix.lower() not in IMAGE_SUFFIXES:
        return "not an image suffix"
    return None


def result_key(key: str, service: Service) -> str:
    return f"{service.settings.storage_results_prefix}{key}.json"


def too_large(photo: StoredPhoto, service: Service) -> dict[str, Any] | None:
    """The error result for an object over MAX_IMAGE_BYTES, known from its size before reading a byte."""
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
    """The API's answer for these bytes, as if they had been POSTed raw: the result object's content."""
    request = Request(
        method="POST",
        headers=Headers({"Content-Type": "application/octet-stream"}),
        body=data,
        request_id=request_id,
        caller=caller,
    )
    response = service.handle(request)
    return {"key": key, "status": response.status, "answer": response.body}
