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

boto3 is part of Lambda's Python runtime, so it is not in the zip; imported on the first notification only.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import unquote_plus

from core.service import Service
from core.storage import StoredPhoto, classify_object, missing, result_key, too_large, why_skipped

CALLER = "aws-s3"
log = logging.getLogger("core")


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
        import boto3

        s3 = boto3.client("s3")
        written, skipped, failed = [], {}, {}
        for bucket, key, other_spelling in self.photos(event):
            photo = StoredPhoto(key)
            reason = why_skipped(photo.key, service)
            if reason:
                skipped[photo.key] = reason
                continue
            try:
                result = self._classify(s3, bucket, photo, service, request_id)
                if result["status"] == 404 and other_spelling and not why_skipped(other_spelling, service):
                    photo = StoredPhoto(other_spelling)
                    result = self._classify(s3, bucket, photo, service, request_id)
                target = result_key(photo.key, service)
                body = json.dumps(result).encode()
                s3.put_object(Bucket=bucket, Key=target, Body=body, ContentType="application/json")
            except Exception as error:  # noqa: BLE001 - every record gets its turn; the invocation fails below
                log.exception("the photo %r was not classified; the event will be retried", photo.key)
                failed[photo.key] = f"{type(error).__name__}: {error}"
                continue
            written.append(target)
        if failed:
            raise RuntimeError(f"{len(failed)} of the event's photos failed (retried by Lambda): {failed}")
        return {"results": written, "skipped": skipped}

    def _classify(
        self, s3: Any, bucket: str, photo: StoredPhoto, service: Service, request_id: str | None
    ) -> dict[str, Any]:
        try:
            obj = s3.get_object(Bucket=bucket, Key=photo.key)
        except s3.exceptions.NoSuchKey:
            return missing(photo.key)
        size = obj.get("ContentLength")
        checked = too_large(StoredPhoto(photo.key, size), service)  # the object may have changed since the event
        if checked:
            obj["Body"].close()
            return checked
        return classify_object(service, photo.key, obj["Body"].read(), request_id, CALLER)
