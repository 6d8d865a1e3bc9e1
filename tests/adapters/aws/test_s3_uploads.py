"""Photos landing in S3 (--param="bucket=NAME"): the S3 notification events AWS documents, through
handlers.aws.lambda_handler, against moto's server as a real S3 API on loopback (boto3 pointed at it with
AWS_ENDPOINT_URL), and `serverless invoke local` of the sample event."""

from __future__ import annotations

import copy
import gzip
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote_plus

import pytest

from tests.helpers import ROOT, phone_photo
from tests.serverless import run_serverless

BUCKET = "clothing-uploads-example"  # the sample event's
SAMPLE_EVENT = json.loads((ROOT / "tests" / "events" / "storage" / "s3-put.json").read_text())
PANTS = (ROOT / "samples" / "pants.jpg").read_bytes()
TSHIRT = (ROOT / "samples" / "t-shirt.jpg").read_bytes()
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


@pytest.fixture
def s3(moto_endpoint, monkeypatch, fresh_service):
    """A fresh bucket on the loopback S3, and boto3 (the handler's too) pointed at it."""
    import boto3

    for name, value in {**AWS, "AWS_ENDPOINT_URL": moto_endpoint}.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    for obj in client.list_objects_v2(Bucket=BUCKET).get("Contents", []) if _exists(client) else []:
        client.delete_object(Bucket=BUCKET, Key=obj["Key"])
    if not _exists(client):
        client.create_bucket(Bucket=BUCKET)
    return client


def _exists(client) -> bool:
    return any(b["Name"] == BUCKET for b in client.list_buckets().get("Buckets", []))


def event_for(*keys: tuple[str, int]) -> dict:
    """The documented ObjectCreated:Put event, one record per (URL-encoded key, size)."""
    record = SAMPLE_EVENT["Records"][0]
    records = []
    for key, size in keys:
        one = copy.deepcopy(record)
        one["s3"]["object"].update(key=key, size=size)
        records.append(one)
    return {"Records": records}


def result_of(s3, key: str) -> dict:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=f"results/{key}.json")["Body"].read())


def invoke(event):
    from handlers.aws import lambda_handler

    return lambda_handler(event, SimpleNamespace(aws_request_id="s3-test"))


def test_a_photo_with_spaces_and_accents_in_its_key_gets_the_apis_answer(s3, aws):
    key = "uploads/summer pants été.jpg"  # the event carries it as uploads/summer+pants+%C3%A9t%C3%A9.jpg
    s3.put_object(Bucket=BUCKET, Key=key, Body=PANTS)
    assert invoke(SAMPLE_EVENT) == {"results": [f"results/{key}.json"], "skipped": {}}
    result = result_of(s3, key)
    assert result["key"] == key and result["status"] == 200
    status, _, api_answer = aws("POST", PANTS, "image/jpeg", {"details": "true"})  # POSTed to the API
    assert status == 200 and result["answer"] == api_answer and api_answer["label"] == "pants"
    obj = s3.head_object(Bucket=BUCKET, Key=f"results/{key}.json")
    assert obj["ContentType"] == "application/json"


def test_a_phone_photo_is_turned_upright_as_the_api_turns_it(s3, tmp_path):
    sideways = phone_photo(tmp_path / "phone.jpg", orientation=6).read_bytes()
    s3.put_object(Bucket=BUCKET, Key="uploads/phone.jpg", Body=sideways)
    invoke(event_for(("uploads/phone.jpg", len(sideways))))
    answer = result_of(s3, "uploads/phone.jpg")["answer"]
    assert answer["label"] == "pants"


def test_what_cannot_be_classified_gets_an_error_result_and_nothing_loops(s3):
    s3.put_object(Bucket=BUCKET, Key="uploads/fake.jpg", Body=b"not an image")
    s3.put_object(Bucket=BUCKET, Key="uploads/notes.txt", Body=b"hello")
    s3.put_object(Bucket=BUCKET, Key="results/uploads/old.jpg.json", Body=b"{}")
    outcome = invoke(
        event_for(
            ("uploads/fake.jpg", 12),
            ("uploads/gone.jpg", 5000),  # deleted before the function read it
            ("uploads/notes.txt", 5),
            ("results/uploads/old.jpg.json", 2),  # the function's own output: a trigger on the whole bucket
            ("photos/elsewhere.jpg", 5000),
        )
    )
    assert outcome["results"] == ["results/uploads/fake.jpg.json", "results/uploads/gone.jpg.json"]
    assert set(outcome["skipped"]) == {"uploads/notes.txt", "results/uploads/old.jpg.json", "photos/elsewhere.jpg"}
    assert "never classified" in outcome["skipped"]["results/uploads/old.jpg.json"]
    fake, gone = result_of(s3, "uploads/fake.jpg"), result_of(s3, "uploads/gone.jpg")
    assert fake["status"] == 422 and fake["answer"]["error"]["type"] == "invalid_image"
    assert gone["status"] == 404 and gone["answer"]["error"]["type"] == "not_found"
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert not any(k.startswith("results/results/") for k in keys)  # no result of a result


def test_an_object_over_the_limit_is_refused_by_its_size_without_reading_it(s3, monkeypatch):
    from core.service import get_service

    monkeypatch.setenv("MAX_IMAGE_BYTES", "10000")
    get_service.cache_clear()
    s3.put_object(Bucket=BUCKET, Key="uploads/big.jpg", Body=PANTS)  # 21,646 bytes
    invoke(event_for(("uploads/big.jpg", len(PANTS))))
    result = result_of(s3, "uploads/big.jpg")
    assert result["status"] == 413 and result["answer"]["error"]["type"] == "payload_too_large"


def test_the_same_event_twice_writes_the_same_result(s3):
    s3.put_object(Bucket=BUCKET, Key="uploads/pants.jpg", Body=PANTS)
    event = event_for(("uploads/pants.jpg", len(PANTS)))
    invoke(event)
    first = s3.get_object(Bucket=BUCKET, Key="results/uploads/pants.jpg.json")["Body"].read()
    invoke(event)
    assert s3.get_object(Bucket=BUCKET, Key="results/uploads/pants.jpg.json")["Body"].read() == first


def test_warm_invocations_share_one_client_made_for_the_environment(s3, moto_endpoint, monkeypatch):
    """A new client costs ~5 ms of CPU: one is kept for as long as what boto3 reads from the environment stays
    the same, as it does for a Lambda container's life."""
    import boto3

    made, real_client = [], boto3.client
    monkeypatch.setattr(boto3, "client", lambda *args, **kwargs: made.append(args) or real_client(*args, **kwargs))
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_endpoint)  # an environment no earlier client was made for
    s3.put_object(Bucket=BUCKET, Key="uploads/pants.jpg", Body=PANTS)
    for _ in range(3):
        invoke(event_for(("uploads/pants.jpg", len(PANTS))))
    assert made == [("s3",)]
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")  # another endpoint: never the old client
    with pytest.raises(RuntimeError, match="Could not connect|EndpointConnectionError"):
        invoke(event_for(("uploads/pants.jpg", len(PANTS))))
    assert made == [("s3",), ("s3",)]


def test_a_platform_failure_raises_so_lambda_retries_it(s3):
    event = event_for(("uploads/pants.jpg", len(PANTS)))
    event["Records"][0]["s3"]["bucket"]["name"] = "no-such-bucket"
    with pytest.raises(RuntimeError, match="NoSuchBucket"):
        invoke(event)


def test_the_services_own_failure_fails_the_invocation_after_every_record(s3, monkeypatch):
    """A 5xx (here a bad setting: every request 500) says nothing about the photo: no result is written, the other
    records still get theirs, and the invocation fails, so Lambda retries it and then the failure queue gets it."""
    from core.service import get_service

    s3.put_object(Bucket=BUCKET, Key="uploads/pants.jpg", Body=PANTS)
    monkeypatch.setenv("MAX_BATCH", "many")
    get_service.cache_clear()
    with pytest.raises(RuntimeError, match="1 of the event's photos failed"):
        invoke(event_for(("uploads/pants.jpg", len(PANTS)), ("uploads/notes.txt", 5)))
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="results/")


def test_a_result_name_past_s3s_limit_is_shortened_and_the_next_records_go_on(s3):
    long_key = "uploads/" + "é" * 502 + ".jpg"  # 1,016 bytes: a valid key, whose result name would be 1,029
    s3.put_object(Bucket=BUCKET, Key=long_key, Body=PANTS)
    s3.put_object(Bucket=BUCKET, Key="uploads/pants.jpg", Body=PANTS)
    outcome = invoke(event_for((quote_plus(long_key), len(PANTS)), ("uploads/pants.jpg", len(PANTS))))
    shortened, plain = outcome["results"]
    assert (
        len(shortened.encode()) <= 1024 and shortened.startswith("results/uploads/éé") and shortened.endswith(".json")
    )
    assert json.loads(s3.get_object(Bucket=BUCKET, Key=shortened)["Body"].read())["key"] == long_key
    assert plain == "results/uploads/pants.jpg.json" and result_of(s3, "uploads/pants.jpg")["status"] == 200


def test_a_late_event_is_judged_by_the_object_as_it_is_now(s3):
    """An old event (a 12 MB photo once stored under the key) arrives after the key got a 21 KB photo: the
    result is the stored photo's, not a 413 over it."""
    s3.put_object(Bucket=BUCKET, Key="uploads/replaced.jpg", Body=PANTS)
    invoke(event_for(("uploads/replaced.jpg", 12_000_000)))
    assert result_of(s3, "uploads/replaced.jpg")["status"] == 200


def test_a_folder_marker_is_not_classified(s3):
    s3.put_object(Bucket=BUCKET, Key="uploads/holiday.jpg/", Body=b"")  # the console's "Create folder"
    outcome = invoke(event_for(("uploads/holiday.jpg/", 0)))
    assert outcome["results"] == [] and "folder" in outcome["skipped"]["uploads/holiday.jpg/"]


def eventbridge_event(key: str, size: int) -> dict:
    """S3's "Object Created" event as EventBridge delivers it to a rule's Lambda target."""
    return {
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": "123456789012",
        "time": "2026-12-04T12:00:00Z",
        "region": "us-east-1",
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {
            "version": "0",
            "bucket": {"name": BUCKET},
            "object": {"key": key, "size": size, "etag": "b1946ac92492d2347c6235b4d2611184", "sequencer": "1"},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": "123456789012",
            "reason": "PutObject",
        },
    }


@pytest.mark.parametrize("spelling", ["uploads/summer pants.jpg", "uploads/summer+pants.jpg"])
def test_an_eventbridge_object_created_event_is_classified_too(s3, spelling):
    """Delivered asynchronously by an EventBridge rule: not a 400 to a direct invocation (which asynchronous
    delivery would drop), but the photo classified by the same rules. The key as stored, or URL-encoded."""
    s3.put_object(Bucket=BUCKET, Key="uploads/summer pants.jpg", Body=PANTS)
    outcome = invoke(eventbridge_event(spelling, len(PANTS)))
    assert outcome["results"] == ["results/uploads/summer pants.jpg.json"]
    assert result_of(s3, "uploads/summer pants.jpg")["status"] == 200


def test_serverless_invoke_local_of_the_sample_event(s3):
    s3.put_object(Bucket=BUCKET, Key="uploads/summer pants été.jpg", Body=PANTS)
    # the s3 fixture pointed the environment (AWS_ENDPOINT_URL, test credentials) at the loopback S3
    proc = run_serverless(
        ["npx", "serverless", "invoke", "local", "-f", "predict", "--path", "tests/events/storage/s3-put.json"],
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert '"results/uploads/summer pants \\u00e9t\\u00e9.jpg.json"' in proc.stdout or "été.jpg.json" in proc.stdout
    assert result_of(s3, "uploads/summer pants été.jpg")["status"] == 200


def test_the_zip_does_not_carry_boto3():
    """boto3 is in Lambda's Python runtime; the function imports it only for a notification."""
    import subprocess

    code = "import handlers.aws, sys; print('boto3' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr[-2000:]
    assert "boto3" not in Path(ROOT / "requirements.txt").read_text()


def test_a_gzip_encoded_object_is_inflated_only_up_to_the_limit(s3, monkeypatch):
    """An object stored ``Content-Encoding: gzip`` is read as stored and inflated with MAX_IMAGE_BYTES as the cap:
    60 KB stored never becomes 50 MB in memory; a gzip-encoded photo is classified as the photo."""
    s3.put_object(Bucket=BUCKET, Key="uploads/bomb.jpg", Body=gzip.compress(b"\0" * 50_000_000), ContentEncoding="gzip")
    s3.put_object(Bucket=BUCKET, Key="uploads/zipped.jpg", Body=gzip.compress(PANTS), ContentEncoding="gzip")
    invoke(event_for(("uploads/bomb.jpg", 60_000), ("uploads/zipped.jpg", 20_000)))
    bomb = result_of(s3, "uploads/bomb.jpg")
    assert bomb["status"] == 413 and "decompresses to more than" in bomb["answer"]["error"]["message"]
    zipped = result_of(s3, "uploads/zipped.jpg")
    assert zipped["status"] == 200 and zipped["answer"]["label"] == "pants"


def test_an_invocation_whose_photo_was_replaced_meanwhile_never_writes_last(s3):
    """The photo is replaced while an invocation classifies it, and the newer upload's invocation finishes first:
    the older one sees another ETag and writes nothing, so the result describes the photo the bucket holds."""
    import dataclasses

    from core.service import get_service
    from core.storage import process_upload
    from handlers.s3_uploads import S3Bucket

    key = "uploads/replaced-meanwhile.jpg"
    s3.put_object(Bucket=BUCKET, Key=key, Body=PANTS)

    class Racing(S3Bucket):
        def open(self, name):
            stored = super().open(name)

            def read():
                data = stored.read()
                s3.put_object(Bucket=BUCKET, Key=key, Body=TSHIRT)
                invoke(event_for((key, len(TSHIRT))))  # the newer event, done first
                return data

            return dataclasses.replace(stored, read=read)

    outcome = process_upload(Racing(s3, BUCKET, {}, lambda _: True), key, get_service())
    assert outcome.skipped == "superseded by a newer version"
    written = result_of(s3, key)
    assert written["answer"]["label"] == "t-shirt"
    assert written["version"] == s3.head_object(Bucket=BUCKET, Key=key)["ETag"]
    assert written["model"]["version"] == json.loads((ROOT / "model" / "clothing-model.json").read_text())["version"]
