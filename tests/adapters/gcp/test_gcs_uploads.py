"""Photos landing in Cloud Storage: `classify_upload` on the real functions-framework server receives
`google.cloud.storage.object.v1.finalized` CloudEvents over HTTP (binary mode, as Eventarc delivers them), with
gcp-storage-emulator on loopback behind the Cloud Storage client (STORAGE_EMULATOR_HOST)."""

from __future__ import annotations

import gzip
import json
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from scripts.local_server import start_functions_framework, stop_server
from tests.adapters.gcp.conftest import BUCKET
from tests.helpers import ROOT

PANTS = (ROOT / "samples" / "pants.jpg").read_bytes()
TSHIRT = (ROOT / "samples" / "t-shirt.jpg").read_bytes()


@pytest.fixture(scope="module")
def function(emulator):
    proc, url = start_functions_framework(
        Path(sys.executable).parent,
        ROOT / "gcp" / "main.py",
        ROOT,
        {"STORAGE_EMULATOR_HOST": emulator, "MAX_IMAGE_BYTES": "5000000"},
        up_status=405,  # a CloudEvent function answers POSTs only
        target="classify_upload",
    )
    yield url
    stop_server(proc)


def finalized(url: str, name: str, size: int, bucket: str = BUCKET) -> int:
    """One finalized event as Eventarc sends it (binary content mode); the function's HTTP status."""
    data = {"bucket": bucket, "name": name, "size": str(size), "contentType": "image/jpeg", "generation": "1"}
    headers = {
        "Content-Type": "application/json",
        "ce-id": str(uuid.uuid4()),
        "ce-specversion": "1.0",
        "ce-source": f"//storage.googleapis.com/projects/_/buckets/{BUCKET}",
        "ce-type": "google.cloud.storage.object.v1.finalized",
        "ce-subject": f"objects/{name}",
        "ce-time": "2026-11-29T12:00:00Z",
    }
    request = urllib.request.Request(url, data=json.dumps(data).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def result(bucket, key: str) -> dict:
    return json.loads(bucket.blob(f"results/{key}.json").download_as_bytes())


def test_an_upload_gets_the_apis_answer_beside_it(function, bucket):
    key = "uploads/summer pants été.jpg"  # Cloud Storage names are not URL-encoded in the event
    bucket.blob(key).upload_from_string(PANTS, content_type="image/jpeg")
    assert finalized(function, key, len(PANTS)) == 200
    written = result(bucket, key)
    assert written["key"] == key and written["status"] == 200
    assert written["answer"]["label"] == "pants"


def test_errors_are_results_and_results_are_never_classified(function, bucket):
    bucket.blob("uploads/fake.jpg").upload_from_string(b"not an image")
    assert finalized(function, "uploads/fake.jpg", 12) == 200
    assert result(bucket, "uploads/fake.jpg")["answer"]["error"]["type"] == "invalid_image"
    assert finalized(function, "uploads/gone.jpg", 100) == 200  # deleted before the function read it
    assert result(bucket, "uploads/gone.jpg")["status"] == 404
    bucket.blob("uploads/huge.jpg").upload_from_string(b"\xff" * 6_000_000)  # over MAX_IMAGE_BYTES, by its size
    assert finalized(function, "uploads/huge.jpg", 6_000_000) == 200
    assert result(bucket, "uploads/huge.jpg")["status"] == 413
    bucket.blob("uploads/folder.jpg/").upload_from_string(b"")  # a folder marker: nothing to classify
    assert finalized(function, "uploads/folder.jpg/", 0) == 200
    assert finalized(function, "results/uploads/fake.jpg.json", 80) == 200  # the function's own output
    names = {blob.name for blob in bucket.list_blobs()}
    assert not any(name.startswith("results/results/") for name in names)
    assert "results/uploads/folder.jpg/.json" not in names


def test_a_late_event_is_judged_by_the_object_as_it_is_now(function, bucket):
    """An old event (a 12 MB photo once stored under the key) after the key got a 21 KB photo: its result."""
    bucket.blob("uploads/replaced.jpg").upload_from_string(PANTS, content_type="image/jpeg")
    assert finalized(function, "uploads/replaced.jpg", 12_000_000) == 200
    assert result(bucket, "uploads/replaced.jpg")["status"] == 200


def test_the_services_own_failure_is_an_error_status_not_a_result(emulator, bucket):
    """A 5xx from the service (here a bad setting: every request 500) fails the CloudEvent (functions-framework
    answers 500, Eventarc retries) and writes no result."""
    proc, url = start_functions_framework(
        Path(sys.executable).parent,
        ROOT / "gcp" / "main.py",
        ROOT,
        {"STORAGE_EMULATOR_HOST": emulator, "MAX_BATCH": "many"},
        up_status=405,
        target="classify_upload",
    )
    try:
        bucket.blob("uploads/busy.jpg").upload_from_string(PANTS, content_type="image/jpeg")
        assert finalized(url, "uploads/busy.jpg", len(PANTS)) == 500
        assert not bucket.blob("results/uploads/busy.jpg.json").exists()
    finally:
        stop_server(proc)


def test_a_storage_failure_is_an_error_status_so_eventarc_retries(function):
    """A bucket that cannot be read is the platform's failure, not the photo's: the function fails (500), which
    Eventarc retries with --retry, instead of writing a result."""
    assert finalized(function, "uploads/pants.jpg", len(PANTS), bucket="no-such-bucket") == 500


def test_a_result_name_past_cloud_storages_limit_is_shortened(function, bucket):
    key = "uploads/" + "é" * 502 + ".jpg"  # 1,016 bytes: a valid name, whose result's would be 1,029
    bucket.blob(key).upload_from_string(PANTS, content_type="image/jpeg")
    assert finalized(function, key, len(PANTS)) == 200
    (written,) = [b.name for b in bucket.list_blobs(prefix="results/uploads/éé")]
    assert len(written.encode()) <= 1024 and json.loads(bucket.blob(written).download_as_bytes())["key"] == key


def test_a_gzip_encoded_upload_is_inflated_only_up_to_the_limit(function, bucket):
    """``gcloud storage cp -Z`` stores photos gzip-encoded. Inflated whole by the client, 60 KB stored would be 50 MB
    in memory (a 10 MiB upload, ~10 GB): read as stored, inflated with MAX_IMAGE_BYTES as the cap."""
    bomb = bucket.blob("uploads/bomb.jpg")
    bomb.content_encoding = "gzip"
    bomb.upload_from_string(gzip.compress(b"\0" * 50_000_000), content_type="image/jpeg")
    assert bomb.size < 100_000
    assert finalized(function, "uploads/bomb.jpg", bomb.size) == 200
    answer = result(bucket, "uploads/bomb.jpg")
    assert answer["status"] == 413 and "decompresses to more than 5000000 bytes" in answer["answer"]["error"]["message"]
    photo = bucket.blob("uploads/zipped-pants.jpg")
    photo.content_encoding = "gzip"
    photo.upload_from_string(gzip.compress(PANTS), content_type="image/jpeg")
    assert finalized(function, "uploads/zipped-pants.jpg", photo.size) == 200
    written = result(bucket, "uploads/zipped-pants.jpg")
    assert written["status"] == 200 and written["answer"]["label"] == "pants"


def test_an_invocation_whose_photo_was_replaced_meanwhile_never_writes_last(emulator, bucket, monkeypatch):
    """The photo is replaced while an invocation classifies it, and the newer upload's invocation finishes first:
    the older one sees a newer generation and writes nothing, so the result describes the photo the bucket holds."""
    import dataclasses

    from core.service import get_service
    from core.storage import process_upload
    from gcp.gcs_bucket import GcsBucket

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator)
    get_service.cache_clear()
    key = "uploads/replaced-meanwhile.jpg"
    bucket.blob(key).upload_from_string(PANTS, content_type="image/jpeg")

    class Racing(GcsBucket):
        def open(self, name):
            stored = super().open(name)

            def read():
                data = stored.read()
                bucket.blob(key).upload_from_string(TSHIRT, content_type="image/jpeg")
                process_upload(GcsBucket(lambda: bucket), key, get_service())  # the newer event, done first
                return data

            return dataclasses.replace(stored, read=read)

    outcome = process_upload(Racing(lambda: bucket), key, get_service())
    assert outcome.skipped == "superseded by a newer version"
    written = result(bucket, key)
    assert written["answer"]["label"] == "t-shirt"
    assert written["version"] == str(bucket.get_blob(key).generation)
    assert written["model"]["name"] == "clothing-model"
    get_service.cache_clear()
