"""Photos already in a bucket, classified by the storage trigger's rules (storage.py), a listing's worth at a time.

Each cloud's fan-out engine hands one worker a share of the bucket's listing (AWS: a Step Functions Distributed
Map's batch of keys; Google: a Cloud Run job task's shard; Azure: a Container Apps job replica's shard); the worker
calls ``classify_listed`` on it. So a backfill moves keys, not bytes: each photo is read once, by the function, from
the bucket.

- A key already answered for the current model (its result names this model's version and the photo's version as
  the listing gives it) is skipped unless ``force``: a rerun costs only what is new or changed.
- Each photo's own problems (not an image, too large, gone) are its result, as on the trigger.
- A failure that is not the photo's (the store, the service's own 5xx) is counted by key and the rest go on; the
  caller then fails the batch or task, so the engine retries it, and the retry skips what was answered.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from .service import Service
from .storage import ObjectStore, process_upload, result_key, why_skipped


@dataclass(frozen=True)
class Listed:
    """A key as the bucket's listing gives it."""

    key: str
    version: str | None = None  # S3 and Blob Storage: the ETag; Cloud Storage: the generation
    size: int | None = None


class ListedStore(ObjectStore, Protocol):
    """An ObjectStore that can also read back a result it wrote, to tell a key already answered."""

    def read_result(self, name: str) -> bytes | None:
        """The result object's bytes, or None when there is none."""
        ...


@dataclass
class Tally:
    """What a worker did with its share: counted by outcome, the answered photos by their top label and verdict."""

    classified: int = 0
    skipped: int = 0  # answered already for this model and this version of the photo
    ignored: int = 0  # not a photo to classify (outside the uploads prefix, a result, a folder marker)
    failed: dict[str, str] = field(default_factory=dict)  # key -> why; the engine retries these
    labels: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[str] = field(default_factory=Counter)  # clothing, not_sure, not_clothing (core/novelty.py)
    errors: Counter[str] = field(default_factory=Counter)  # a photo's own error results, by type

    def as_dict(self) -> dict[str, Any]:
        return {
            "classified": self.classified,
            "skipped": self.skipped,
            "ignored": self.ignored,
            "failed": self.failed,
            "labels": dict(self.labels),
            "verdicts": dict(self.verdicts),
            "errors": dict(self.errors),
        }


# Seconds of its time a worker keeps in hand: past this, no new photo is started (the slowest, a 10 MiB download
# and a 36 MP decode, takes about 3 s on Lambda's 1,024 MB), and the keys not reached are left to the retry.
TIME_MARGIN_SECONDS = 5.0


def classify_listed(
    store: ListedStore,
    items: Iterable[Listed],
    service: Service,
    force: bool = False,
    request_id: str | None = None,
    time_left: Callable[[], float] | None = None,
) -> Tally:
    """Every listed key through the storage workflow, skipping those already answered; never raises for one key.
    ``time_left`` (seconds) stops starting photos near the worker's end: those keys are failed, for the retry."""
    tally = Tally()
    model_version = service.classifier.loaded_manifest().version
    for item in items:
        if time_left is not None and time_left() < TIME_MARGIN_SECONDS:
            tally.failed[item.key] = "not reached in this invocation's time; the retry starts from it"
            continue
        if why_skipped(item.key, service):
            tally.ignored += 1
            continue
        try:
            if not force and answered(store, item, model_version, service):
                tally.skipped += 1
                continue
            outcome = process_upload(store, item.key, service, request_id)
        except Exception as error:  # noqa: BLE001 - one key's failure is counted; the others go on
            tally.failed[item.key] = f"{type(error).__name__}: {str(error)[:300]}"
            continue
        _count(tally, outcome.result)
    return tally


def answered(store: ListedStore, item: Listed, model_version: str, service: Service) -> bool:
    """Whether the key's result names this model's version and the listed version of the photo."""
    data = store.read_result(result_key(item.key, service))
    if data is None:
        return False
    try:
        result = json.loads(data)
    except ValueError:  # a damaged result is answered again
        return False
    model = result.get("model") if isinstance(result, dict) else None
    return (
        isinstance(model, dict)
        and model.get("version") == model_version
        and (item.version is None or result.get("version") == item.version)
    )


def _count(tally: Tally, result: dict[str, Any] | None) -> None:
    if result is None:  # superseded: the newer version's own event answers it
        tally.skipped += 1
        return
    tally.classified += 1
    answer = result.get("answer")
    if result.get("status") == 200 and isinstance(answer, dict) and isinstance(answer.get("label"), str):
        tally.labels[answer["label"]] += 1  # the details answer (storage.py)
        if isinstance(answer.get("verdict"), str):
            tally.verdicts[answer["verdict"]] += 1
    elif isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        tally.errors[str(answer["error"].get("type"))] += 1


def shard(items: Iterable[Listed], index: int, count: int) -> Iterator[Listed]:
    """The items of task ``index`` of ``count``, by a hash of each key: disjoint shards that cover the listing, the
    same in every task whatever order its listing comes in and whatever lands in the bucket meanwhile."""
    if not 0 <= index < count:
        raise ValueError(f"task index {index} is not in 0..{count - 1}")
    return (item for item in items if _bucket_of(item.key, count) == index)


def _bucket_of(key: str, count: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % count
