"""The backfill on AWS: the project's state machine (infra/backfill.yml, as `serverless print` resolves it) run by
moto's Step Functions over a moto S3 bucket of 500 photos, its Distributed Map's S3 ItemReader listing the prefix
and its lambda:invoke children reaching handlers.aws.lambda_handler through the Lambda Invoke API on loopback.

moto's interpreter refuses three fields the full definition has (ItemBatcher, ToleratedFailurePercentage, EXPRESS
children): the run uses the definition without them, one key per child, which the handler takes as AWS hands it
over; the batched event is tested on the handler directly, with the shape AWS documents, and the full definition is
checked against the States Language by asl-validator and cfn-lint (tests/adapters/aws/test_backfill_template.py).
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from tests.helpers import ROOT, photo_views

BUCKET = "shop-photos-backfill"
PHOTOS = 500
MODEL_VERSION = json.loads((ROOT / "model" / "clothing-model.json").read_text())["version"]
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:clothing-classifier-dev-predict"


def moto_definition(definition: dict) -> dict:
    """The project's definition less what moto cannot parse (the module docstring says which, and why)."""
    definition = json.loads(json.dumps(definition))  # the session's copy stays whole
    classify = definition["States"]["Classify"]
    del classify["ItemBatcher"], classify["ToleratedFailurePercentage"]
    classify["ItemProcessor"]["ProcessorConfig"]["ExecutionType"] = "STANDARD"
    classify["MaxConcurrency"] = 8  # one key per child here: each child is a thread of this test process
    text = json.dumps(definition).replace("${FunctionArn}", FUNCTION_ARN)
    return json.loads(text.replace("${ResultsPrefix}", "results/_backfill"))


class LambdaInvokeApi(BaseHTTPRequestHandler):
    """``POST /2015-03-31/functions/NAME/invocations`` as Lambda answers it: the handler's return value, or its
    error with ``X-Amz-Function-Error`` (Step Functions names the error after its errorType)."""

    answers: list = []

    def do_POST(self) -> None:
        from handlers.aws import lambda_handler

        event = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        context = SimpleNamespace(aws_request_id="backfill", get_remaining_time_in_millis=lambda: 29_000)
        headers = {"Content-Type": "application/json"}
        try:
            answer = lambda_handler(event, context)
        except Exception as error:  # noqa: BLE001 - what Lambda turns into a function error
            answer = {"errorType": type(error).__name__, "errorMessage": str(error)}
            headers["X-Amz-Function-Error"] = "Unhandled"
        self.answers.append(answer)
        body = json.dumps(answer).encode()
        self.send_response(200)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class InvokeServer(ThreadingHTTPServer):
    request_queue_size = 128  # the Map's children connect at once; the default backlog of 5 would drop some
    daemon_threads = True


@pytest.fixture
def aws(monkeypatch, fresh_service, backfill_definition):
    from moto import mock_aws

    server = InvokeServer(("127.0.0.1", 0), LambdaInvokeApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_ENDPOINT_URL_LAMBDA": f"http://127.0.0.1:{server.server_address[1]}",
        "STORAGE_BUCKET": BUCKET,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    LambdaInvokeApi.answers = []
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        import boto3

        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        machine = boto3.client("stepfunctions").create_state_machine(
            name="backfill",
            definition=json.dumps(moto_definition(backfill_definition)),
            roleArn="arn:aws:iam::123456789012:role/backfill",
        )["stateMachineArn"]
        yield s3, machine
    server.shutdown()


def run(machine: str, force: bool = False) -> dict:
    import boto3

    sfn = boto3.client("stepfunctions")
    execution = sfn.start_execution(
        stateMachineArn=machine, name=uuid.uuid4().hex, input=json.dumps({"prefix": "uploads/", "force": force})
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.5)
    raise AssertionError("the backfill did not finish in 10 minutes")


def put_photos(s3, count: int) -> list[str]:
    keys = []
    for i, view in enumerate(photo_views(ROOT / "samples" / "pants.jpg", count)):
        buffer = io.BytesIO()
        view.resize((96, 96)).save(buffer, "JPEG", quality=85)
        keys.append(f"uploads/catalogue/{i:04d}.jpg")
        s3.put_object(Bucket=BUCKET, Key=keys[-1], Body=buffer.getvalue())
    return keys


def test_every_photo_gets_exactly_one_result_and_a_rerun_skips_them_all(aws):
    s3, machine = aws
    keys = put_photos(s3, PHOTOS)
    s3.put_object(Bucket=BUCKET, Key="uploads/notes.txt", Body=b"not a photo")  # listed, not classified
    assert run(machine)["status"] == "SUCCEEDED"
    results = [
        o["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="results/")
        for o in page.get("Contents", [])
    ]
    assert sorted(k for k in results if not k.startswith("results/_backfill/")) == [f"results/{k}.json" for k in keys]
    first = json.loads(s3.get_object(Bucket=BUCKET, Key=f"results/{keys[0]}.json")["Body"].read())
    etag = s3.head_object(Bucket=BUCKET, Key=keys[0])["ETag"]
    assert first["status"] == 200 and first["version"] == etag and first["model"]["version"] == MODEL_VERSION
    tallies = [a for a in LambdaInvokeApi.answers if "classified" in a]
    assert sum(t["classified"] for t in tallies) == PHOTOS and sum(t["ignored"] for t in tallies) == 1

    LambdaInvokeApi.answers.clear()
    assert run(machine)["status"] == "SUCCEEDED"
    assert sum(a["skipped"] for a in LambdaInvokeApi.answers) == PHOTOS
    assert sum(a["classified"] for a in LambdaInvokeApi.answers) == 0


def batch_event(keys: list[str], s3, force: bool = False) -> dict:
    """What a Distributed Map's ItemBatcher hands the function: the S3 ItemReader's items and the BatchInput."""
    items = []
    for key in keys:
        head = s3.head_object(Bucket=BUCKET, Key=key)
        items.append({"Key": key, "ETag": head["ETag"], "Size": head["ContentLength"], "StorageClass": "STANDARD"})
    return {"Items": items, "BatchInput": {"bucket": BUCKET, "force": force}}


def test_a_batch_with_a_transient_failure_fails_and_its_retry_does_only_the_rest(aws, monkeypatch):
    from handlers.aws import lambda_handler
    from handlers.backfill import BatchFailed
    from handlers.s3_uploads import S3Bucket

    s3, _ = aws
    keys = put_photos(s3, 6)
    context = SimpleNamespace(aws_request_id="b", get_remaining_time_in_millis=lambda: 29_000)
    real_open, refused = S3Bucket.open, {keys[2]}

    def flaky_open(self, key):
        if key in refused:
            raise ConnectionError("S3 read timed out")
        return real_open(self, key)

    monkeypatch.setattr(S3Bucket, "open", flaky_open)
    with pytest.raises(BatchFailed, match="1 of 6 keys failed"):
        lambda_handler(batch_event(keys, s3), context)
    assert not any(o["Key"].endswith("0002.jpg.json") for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    refused.clear()
    tally = lambda_handler(batch_event(keys, s3), context)
    assert (tally["classified"], tally["skipped"], tally["failed"]) == (1, 5, {})
    forced = lambda_handler(batch_event(keys, s3, force=True), context)
    assert forced["classified"] == 6 and forced["labels"] == {"pants": 6} and sum(forced["verdicts"].values()) == 6
    s3.put_object(Bucket=BUCKET, Key=keys[1], Body=(ROOT / "samples" / "t-shirt.jpg").read_bytes())  # replaced
    again = lambda_handler(batch_event(keys, s3), context)  # its listed ETag is not the one its result names
    assert (again["classified"], again["skipped"], again["labels"]) == (1, 5, {"t-shirt": 1})


def test_a_batch_stops_starting_photos_near_the_end_of_its_time(aws):
    from handlers.aws import lambda_handler
    from handlers.backfill import BatchFailed

    s3, _ = aws
    keys = put_photos(s3, 3)
    clock = iter([29_000, 29_000, 4_000])  # milliseconds left before each photo
    context = SimpleNamespace(aws_request_id="b", get_remaining_time_in_millis=lambda: next(clock))
    with pytest.raises(BatchFailed, match="1 of 3 keys failed.*not reached"):
        lambda_handler(batch_event(keys, s3), context)
    context.get_remaining_time_in_millis = lambda: 29_000
    assert lambda_handler(batch_event(keys, s3), context)["classified"] == 1
