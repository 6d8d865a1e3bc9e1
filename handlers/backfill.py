"""A Step Functions Distributed Map's child invocation (``--param="backfill=true"``): a batch of the bucket's keys,
as the Map's S3 ItemReader lists them (``Key``, ``ETag``, ``Size``), classified by the storage trigger's rules
(core/backfill.py) and their results written where the trigger writes them.

The Map's ItemBatcher hands over ``{"Items": [...], "BatchInput": {"bucket": ..., "force": ...}}``; a Map without a
batcher hands over one listed item itself. Keys already answered for the current model are skipped. A failure
that is not a photo's fails the invocation once every key has had its turn, and so does a batch that cannot
finish in the function's time (no photo is started in its last seconds): the Map retries the batch, and the
retry skips what this one answered.
"""

from __future__ import annotations

import json
from typing import Any

from core.backfill import Listed, classify_listed
from core.service import Service

from .s3_uploads import S3Bucket, s3_client


class BatchFailed(RuntimeError):
    """Some keys of the batch failed for a reason not theirs; the Map's Retry runs the batch again."""


class BackfillBatch:
    def matches(self, event: Any) -> bool:
        if not isinstance(event, dict):
            return False
        items = event.get("Items")
        if isinstance(items, list):
            return all(isinstance(item, dict) and isinstance(item.get("Key"), str) for item in items)
        return isinstance(event.get("Key"), str) and "ETag" in event  # one item, from a Map without a batcher

    def process(self, event: dict[str, Any], service: Service, context: Any) -> dict[str, Any]:
        """The batch's tally: {"classified", "skipped", "ignored", "failed", "labels", "errors"}."""
        given = event.get("BatchInput")
        batch_input: dict[str, Any] = given if isinstance(given, dict) else {}
        bucket = str(batch_input.get("bucket") or service.settings.storage_bucket)
        items = event["Items"] if isinstance(event.get("Items"), list) else [event]
        listed = [Listed(str(i["Key"]), i.get("ETag"), i.get("Size")) for i in items]
        store = S3Bucket(s3_client(), bucket, {}, lambda key: True)
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        time_left = (lambda: remaining() / 1000) if callable(remaining) else None
        request_id = getattr(context, "aws_request_id", None)
        tally = classify_listed(store, listed, service, bool(batch_input.get("force")), request_id, time_left)
        if tally.failed:
            raise BatchFailed(f"{len(tally.failed)} of {len(listed)} keys failed: {json.dumps(tally.failed)[:2000]}")
        return tally.as_dict()
