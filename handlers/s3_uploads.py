"""S3 ObjectCreated notifications (``--param="bucket=NAME"``): each new photo under the uploads prefix is
classified and its result written beside it, under the results prefix (rules: core/storage.py). The same photos
may come as EventBridge's "Object Created" events instead (an EventBridge rule on the bucket targeting the
function, delivered asynchronously): one photo per event, the same rules and results.

An event holds one or more records, each processed whatever happened to the others. A photo that cannot be
classified (not an image, too large, gone) gets an error result object: retrying would not change the answer. A
failure that is not the photo's (S3 refusing a read or write, throttling, the service's own 5xx) fails the
invocation once every record has had its turn, so Lambda's asynchronous retries run, then the failure
destination in serverless.yml receives the event: nothing is dropped silently, and a retry rewrites the same
results.

The object is judged as S3 holds it when the record is processed (its size and bytes from GetObject), not by the
record's size: a late or repeated event for a key that now holds another photo classifies that photo.

boto3 is part of Lambda's Python runtime, so it is not in the zip; imported on the first notification only. Its
client is made once per container (``s3_client``): making one costs about 5 ms of CPU on a warm invocation.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_plus

from core.service import Service
from core.storage import StoredObject, process_upload, why_skipped

CALLER = "aws-s3"
log = logging.getLogger("core")


# What boto3 reads from the environment when it makes a client. Lambda fixes them for a container's life; a process
# that changes them (tests, one endpoint then another) gets a client for each.
_CLIENT_ENVIRONMENT = (
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)
_clients: dict[tuple[str | None, ...], Any] = {}
_clients_lock = threading.Lock()  # boto3's default session is not thread-safe; its clients are


def s3_client() -> Any:
    """boto3's S3 client, made on first use and kept: warm invocations skip its ~5 ms of set-up (botocore's
    description of the S3 API loaded and its event handlers wired, for each new client)."""
    key = tuple(os.environ.get(name) for name in _CLIENT_ENVIRONMENT)
    with _clients_lock:
        if key not in _clients:
            import boto3

            _clients[key] = boto3.client("s3")
        return _clients[key]


def _is_object_created(record: Any) -> bool:
    return (
        isinstance(record, dict)
        and record.get("eventSource") == "aws:s3"
        and str(record.get("eventName", "")).startswith("ObjectCreated")
    )


def _is_eventbridge_object_created(event: Any) -> bool:
    return (
        isinstance(event, dict)
        and event.get("source") == "aws.s3"
        and event.get("detail-type") == "Object Created"
        and isinstance(event.get("detail"), dict)
    )


class S3Uploads:
    def matches(self, event: Any) -> bool:
        if _is_eventbridge_object_created(event):
            return True
        records = event.get("Records") if isinstance(event, dict) else None
        return isinstance(records, list) and bool(records) and all(map(_is_object_created, records))

    @staticmethod
    def photos(event: dict[str, Any]) -> list[tuple[str, str, str | None]]:
        """(bucket, key, the key's other spelling to try if S3 has no such key) for each photo in the event.
        A notification's keys are URL-encoded (``+`` for a space); EventBridge's are documented as they are
        stored, so the URL-decoded spelling is tried second."""
        if _is_eventbridge_object_created(event):
            detail = event["detail"]
            key = str(detail["object"]["key"])
            return [(detail["bucket"]["name"], key, unquote_plus(key) if unquote_plus(key) != key else None)]
        return [(r["s3"]["bucket"]["name"], unquote_plus(r["s3"]["object"]["key"]), None) for r in event["Records"]]

    def process(self, event: dict[str, Any], service: Service, request_id: str | None) -> dict[str, Any]:
        """Every record's outcome: {"results": [result keys written], "skipped": {key: why}}."""
        s3 = s3_client()
        written, skipped, failed = [], {}, {}
        for bucket, key, other_spelling in self.photos(event):
            store = S3Bucket(s3, bucket, {key: other_spelling}, lambda other: not why_skipped(other, service))
            try:
                outcome = process_upload(store, key, service, request_id)
            except Exception as error:  # noqa: BLE001 - every record gets its turn; the invocation fails below
                log.exception("the photo %r was not classified; the event will be retried", key)
                failed[key] = f"{type(error).__name__}: {error}"
                continue
            if outcome.skipped:
                skipped[outcome.key] = outcome.skipped
            else:
                written.append(outcome.result_name)
        if failed:
            raise RuntimeError(f"{len(failed)} of the event's photos failed (retried by Lambda): {failed}")
        return {"results": written, "skipped": skipped}


class S3Bucket:
    """core.storage's ObjectStore on one S3 bucket. ``fallbacks``: a key's other spelling, opened when S3 has no
    object under the key as the event spelled it (and ``classified`` says that spelling would be classified)."""

    caller = CALLER

    def __init__(
        self, s3: Any, bucket: str, fallbacks: dict[str, str | None], classified: Callable[[str], bool]
    ) -> None:
        self.s3, self.bucket, self.fallbacks, self.classified = s3, bucket, fallbacks, classified

    def open(self, key: str) -> StoredObject | None:
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=key)
        except self.s3.exceptions.NoSuchKey:
            other = self.fallbacks.get(key)
            return self.open(other) if other and self.classified(other) else None
        body = obj["Body"]
        return StoredObject(
            key, obj.get("ContentLength"), body.read, body.close, _version(obj), obj.get("ContentEncoding")
        )

    def write(self, name: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=name, Body=body, ContentType="application/json")

    def read_result(self, name: str) -> bytes | None:
        try:
            return bytes(self.s3.get_object(Bucket=self.bucket, Key=name)["Body"].read())
        except self.s3.exceptions.NoSuchKey:
            return None

    def superseded(self, stored: StoredObject) -> bool:
        try:
            now = self.s3.head_object(Bucket=self.bucket, Key=stored.key)
        except self.s3.exceptions.ClientError:  # gone (404) or unreadable: no newer version to defer to
            return False
        return _version(now) != stored.version


def _version(obj: dict[str, Any]) -> str | None:
    """The object's ETag: it changes whenever the key gets other bytes, in a versioned bucket or not, and a listing
    gives it too (so a backfill can tell an answered photo without reading it)."""
    etag = obj.get("ETag")
    return str(etag) if etag else None
