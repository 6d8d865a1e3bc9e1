"""S3 ObjectCreated notifications (``--param="bucket=NAME"``): each new photo under the uploads prefix is
classified and its result written beside it, under the results prefix (rules: core/storage.py).

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


class S3Uploads:
    def matches(self, event: Any) -> bool:
        records = event.get("Records") if isinstance(event, dict) else None
        return isinstance(records, list) and bool(records) and all(map(_is_object_created, records))

    def process(self, event: dict[str, Any], service: Service, request_id: str | None) -> dict[str, Any]:
        """Every record's outcome: {"results": [result keys written], "skipped": {key: why}}."""
        import boto3

        s3 = boto3.client("s3")
        written, skipped, failed = [], {}, {}
        for record in event["Records"]:
            bucket = record["s3"]["bucket"]["name"]
            photo = StoredPhoto(unquote_plus(record["s3"]["object"]["key"]))
            reason = why_skipped(photo.key, service)
            if reason:
                skipped[photo.key] = reason
                continue
            try:
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
