"""S3 ObjectCreated notifications (``--param="bucket=NAME"``): each new photo under the uploads prefix is
classified and its result written beside it, under the results prefix (rules: core/storage.py).

An event holds one or more records. A photo that cannot be classified (not an image, too large, gone) gets an
error result object, and the invocation succeeds: retrying would not change the answer. A platform failure
(S3 refusing to read or write, throttling) raises, so Lambda's asynchronous retries run, then the failure
destination in serverless.yml receives the event: nothing is dropped silently.

boto3 is part of Lambda's Python runtime, so it is not in the zip; imported on the first notification only.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from core.service import Service
from core.storage import StoredPhoto, classify_object, missing, result_key, too_large, why_skipped

CALLER = "aws-s3"


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
        written, skipped = [], {}
        for record in event["Records"]:
            bucket = record["s3"]["bucket"]["name"]
            photo = StoredPhoto(unquote_plus(record["s3"]["object"]["key"]), record["s3"]["object"].get("size"))
            reason = why_skipped(photo.key, service)
            if reason:
                skipped[photo.key] = reason
                continue
            result = too_large(photo, service) or self._classify(s3, bucket, photo, service, request_id)
            target = result_key(photo.key, service)
            s3.put_object(Bucket=bucket, Key=target, Body=json.dumps(result).encode(), ContentType="application/json")
            written.append(target)
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
