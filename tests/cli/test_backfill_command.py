"""`python -m cli backfill`: on AWS end to end against moto's Step Functions (the project's state machine from
infra/backfill.yml, its children reaching handlers.aws.lambda_handler through a loopback Lambda API), Ctrl-C and
--no-wait; on Google Cloud the summary from the tallies gcp/backfill.py's tasks write to gcp-storage-emulator,
and gcloud's absence or refusal as one line.

moto runs the definition less ItemBatcher, ToleratedFailurePercentage and EXPRESS children (it cannot parse them;
tests/adapters/aws/test_backfill.py says more), so each child is one key; its ResultWriter writes a manifest that
lists no result files, so the label counts come from a run without the ResultWriter (the execution's output), and
the ResultWriter's files are read back in the shape AWS documents for them.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from tests.adapters.aws.test_backfill import BUCKET, LambdaInvokeApi, moto_definition, put_photos
from tests.helpers import ROOT, as_typed_in_a_terminal, photo_views

PHOTOS = 120
PARAMS = {
    "param:bucket": BUCKET,
    "param:backfillBatch": "100",
    "param:backfillConcurrency": "100",
    "param:resultsPrefix": "results/",
    "param:uploadsPrefix": "uploads/",
    "param:backfill": "true",
    "self:service": "clothing-classifier",
    "sls:stage": "dev",
}
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def definition(result_writer: bool = True) -> dict:
    """infra/backfill.yml's state machine with the parameters serverless.yml gives it, as moto can run it (read
    here rather than through `serverless print`, which takes tens of seconds of Node for the same text)."""
    text = (ROOT / "infra" / "backfill.yml").read_text()
    text = re.sub(r"\$\{(param:\w+|self:service|sls:stage)\}", lambda m: PARAMS[m.group(1)], text)
    loaded = yaml.safe_load(text)
    resources = loaded.get("true", loaded)["Resources"]  # serverless.yml includes the 'true' half under backfill=true
    machine = moto_definition(resources["BackfillStateMachine"]["Properties"]["Definition"])
    if not result_writer:
        del machine["States"]["Classify"]["ResultWriter"]
    return machine


class LambdaApi(LambdaInvokeApi):
    """The Lambda API on loopback: invocations (LambdaInvokeApi), and the function's configuration, which the
    command reads for the uploads prefix and the memory size."""

    def do_GET(self) -> None:
        body = json.dumps(
            {"MemorySize": 1024, "Environment": {"Variables": {"STORAGE_UPLOADS_PREFIX": "uploads/"}}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class LoopbackServer(ThreadingHTTPServer):
    """Room for a burst: the Map starts up to its MaxConcurrency (100) children at once, and the default backlog of
    5 connections would drop some (Step Functions reports a dropped connection as States.Runtime, not retried)."""

    request_queue_size = 256
    daemon_threads = True


def serve(handler) -> tuple[ThreadingHTTPServer, str]:
    server = LoopbackServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def moto(monkeypatch, fresh_service):
    """moto in-process with a bucket of photos, the state machine twice (with and without its ResultWriter) and
    a stack whose output names the first."""
    from moto import mock_aws

    server, url = serve(LambdaApi)
    for name, value in {**CREDENTIALS, "AWS_ENDPOINT_URL_LAMBDA": url, "STORAGE_BUCKET": BUCKET}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        import boto3

        s3, sfn = boto3.client("s3"), boto3.client("stepfunctions")
        s3.create_bucket(Bucket=BUCKET)
        role = "arn:aws:iam::123456789012:role/backfill"
        machines = {
            writer: sfn.create_state_machine(
                name=f"backfill-{writer}", definition=json.dumps(definition(writer)), roleArn=role
            )["stateMachineArn"]
            for writer in (True, False)
        }
        _stack_naming(machines[False])
        yield s3, sfn, machines
    server.shutdown()


def _stack_naming(arn: str) -> None:
    """The deployed stack's output, as serverless deploys it (moto's CloudFormation cannot create the Distributed
    Map's state machine itself: the output is the one thing the command reads from the stack)."""
    import boto3

    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"BackfillStateMachineArn": {"Value": arn}},
    }
    boto3.client("cloudformation").create_stack(StackName="clothing-classifier-dev", TemplateBody=json.dumps(template))


def backfill(capsys, *args: str) -> tuple[int, str, str]:
    from cli.__main__ import main

    code = main(["backfill", *args, "--poll", "0.2"])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_backfill_classifies_every_photo_and_a_rerun_skips_them_all(moto, capsys):
    s3, _, _ = moto
    put_photos(s3, PHOTOS)
    s3.put_object(Bucket=BUCKET, Key="uploads/notes.txt", Body=b"not a photo")

    code, _, err = backfill(capsys, f"s3://{BUCKET}/uploads/", "--summary-json")
    assert code == 0, err
    assert f"{PHOTOS + 1}/{PHOTOS + 1} images (100%)" in err  # the Map Run's item counts, one item per key
    summary = json.loads(err[err.index("{\n") : err.rindex("}") + 1])
    assert (summary["classified"], summary["skipped"], summary["ignored"], summary["failed"]) == (PHOTOS, 0, 1, {})
    assert sum(summary["labels"].values()) == PHOTOS and summary["labels"]["pants"] >= PHOTOS * 0.9
    assert sum(summary["verdicts"].values()) == PHOTOS and summary["verdicts"].get("clothing", 0) >= PHOTOS * 0.8
    assert summary["status"] == "succeeded" and summary["workers"] == PHOTOS + 1
    cost = summary["cost_estimate"]
    assert set(cost["items"]) == {"step functions", "lambda", "s3 requests"} and 0 < cost["total"] < 0.01
    assert "assumed 0.15 s per photo" in cost["basis"]  # moto's children give no durations

    code, _, err = backfill(capsys, f"s3://{BUCKET}/uploads/")
    assert code == 0, err
    assert f"0 classified, {PHOTOS} skipped (answered already for this model), 0 failed, 1 ignored" in err
    assert "labels:" not in err and "cost estimate: $" in err


def test_the_state_machine_with_its_result_writer_reads_the_manifest_moto_writes(moto, capsys):
    s3, _, machines = moto
    put_photos(s3, 4)
    code, _, err = backfill(capsys, f"s3://{BUCKET}/uploads/", "--state-machine", machines[True])
    assert code == 0, err
    assert re.search(r"note: s3://\S+/results/_backfill/[0-9a-f-]+/manifest.json lists no result files", err), err
    assert "the Map Run counted 4 items succeeded, 0 failed" in err


def test_the_result_writers_files_are_read_as_aws_documents_them(moto):
    """SUCCEEDED_0.json and FAILED_0.json as Step Functions writes them (a JSON array of child executions, each
    with its Input and Output as JSON text; a failed one with Error and Cause), found through the manifest."""
    from cli import backfill_aws as aws
    from cli.backfill_totals import aws_cost

    s3, sfn, machines = moto
    folder = "results/_backfill/0d3f6a2b-5c4e-3e0f-9d6f-4c8c5b2a1e7f"
    tally = {"classified": 98, "skipped": 1, "ignored": 1, "failed": {}, "labels": {"pants": 90, "shoes": 8}}
    cause = {"errorType": "BatchFailed", "errorMessage": '1 of 100 keys failed: {"uploads/b/7.jpg": "S3 timed out"}'}
    records = {
        "SUCCEEDED": [{"Status": "SUCCEEDED", "Input": json.dumps({"Items": []}), "Output": json.dumps(tally),
                       "StartDate": "2026-11-24T10:00:00.000Z", "StopDate": "2026-11-24T10:00:12.500Z"}],
        "FAILED": [{"Status": "FAILED", "Input": json.dumps({"Items": [{"Key": "uploads/b/7.jpg"}]}),
                    "Error": "BatchFailed", "Cause": json.dumps(cause),
                    "StartDate": "2026-11-24T10:00:00.000Z", "StopDate": "2026-11-24T10:00:02.000Z"}],
    }  # fmt: skip
    files = {}
    for status, body in records.items():
        s3.put_object(Bucket=BUCKET, Key=f"{folder}/{status}_0.json", Body=json.dumps(body).encode())
        files[status] = [{"Key": f"{folder}/{status}_0.json", "Size": 1}]
    manifest = {"DestinationBucket": BUCKET, "MapRunArn": "arn", "ResultFiles": {**files, "PENDING": []}}
    s3.put_object(Bucket=BUCKET, Key=f"{folder}/manifest.json", Body=json.dumps(manifest).encode())
    output = {"ResultWriterDetails": {"Bucket": BUCKET, "Key": f"{folder}/manifest.json"}}

    totals, children = aws.collect(s3, sfn, aws.Machine(sfn, machines[True]), {"output": json.dumps(output)}, None)
    assert children == 2 and totals.classified == 98 and totals.labels["shoes"] == 8
    assert totals.failed == {"uploads/b/7.jpg": "S3 timed out"} and totals.worker_seconds == 14.5
    assert "measured durations" in aws_cost(totals, children)["basis"]


def test_the_wrong_bucket_or_a_prefix_outside_the_uploads_is_one_line_before_anything_starts(moto, capsys):
    _, sfn, machines = moto
    code, _, err = backfill(capsys, "s3://someone-elses-bucket/uploads/")
    assert code == 2 and err.count("\n") == 1 and f"lists s3://{BUCKET}/, not s3://someone-elses-bucket/" in err
    code, _, err = backfill(capsys, f"s3://{BUCKET}/results/")
    assert code == 2 and err.count("\n") == 1 and "outside the function's uploads prefix 'uploads/'" in err
    code, _, err = backfill(capsys, f"s3://{BUCKET}/uploads/", "--stack", "no-such-stack")
    assert code == 2 and err.startswith("error: cannot read the stack no-such-stack")
    assert sfn.list_executions(stateMachineArn=machines[False])["executions"] == []


def test_no_wait_prints_the_execution_and_how_to_watch_and_stop_it(moto, capsys):
    s3, sfn, _ = moto
    put_photos(s3, 3)  # moto fails a Map over an empty listing (its reader expects Contents); AWS maps nothing
    code, out, err = backfill(capsys, f"s3://{BUCKET}/uploads/", "--no-wait")
    execution = out.strip()
    assert code == 0 and execution.startswith("arn:aws:states:us-east-1:123456789012:execution:backfill-False:")
    assert f"aws stepfunctions describe-execution --region us-east-1 --execution-arn {execution}" in err
    assert f"aws stepfunctions stop-execution --region us-east-1 --execution-arn {execution}" in err
    deadline = time.monotonic() + 60  # it runs on without the command
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sfn.describe_execution(executionArn=execution)["status"] == "SUCCEEDED"
    assert len(s3.list_objects_v2(Bucket=BUCKET, Prefix="results/uploads/")["Contents"]) == 3


class Router(BaseHTTPRequestHandler):
    """moto's server as its Step Functions interpreter reaches it (MOTO_PORT): Lambda invocations to the project's
    handler, held until the test lets them go; every other request passed to moto."""

    moto_port = 0
    release = threading.Event()
    protocol_version = "HTTP/1.1"

    def _any(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/2015-03-31/functions/") and self.path.endswith("/invocations"):
            self.release.wait(120)
            status, headers, body = _invoke(body)
        else:
            connection = http.client.HTTPConnection("127.0.0.1", self.moto_port, timeout=60)
            connection.request(self.command, self.path, body, dict(self.headers))
            answer = connection.getresponse()
            status, headers, body = answer.status, dict(answer.getheaders()), answer.read()
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

    def log_message(self, *args: object) -> None:
        pass


def _invoke(event: bytes) -> tuple[int, dict, bytes]:
    from types import SimpleNamespace

    from handlers.aws import lambda_handler

    context = SimpleNamespace(aws_request_id="backfill", get_remaining_time_in_millis=lambda: 29_000)
    answer = lambda_handler(json.loads(event or b"{}"), context)
    return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()


@pytest.fixture
def moto_server(monkeypatch, fresh_service):
    """moto as a server (the command runs in its own process), executing state machines."""
    from moto.server import ThreadedMotoServer

    from scripts.local_server import free_port

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    Router.moto_port, Router.release = server.get_host_and_port()[1], threading.Event()
    router, _ = serve(Router)
    moto_url = f"http://127.0.0.1:{Router.moto_port}"
    for name, value in {**CREDENTIALS, "AWS_ENDPOINT_URL": moto_url, "STORAGE_BUCKET": BUCKET}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MOTO_PORT", str(router.server_address[1]))
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    config = {"stepfunctions": {"execute_state_machine": True}}
    _post(f"{moto_url}/moto-api/config", config)
    try:
        yield moto_url
    finally:
        Router.release.set()
        _post(f"{moto_url}/moto-api/config", {"stepfunctions": {"execute_state_machine": False}})
        router.shutdown()
        server.stop()


def _post(url: str, body: dict) -> None:
    import urllib.request

    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=10).read()


def test_ctrl_c_leaves_the_execution_running_and_says_how_to_watch_and_stop_it(moto_server):
    import boto3

    s3, sfn = boto3.client("s3"), boto3.client("stepfunctions")
    s3.create_bucket(Bucket=BUCKET)
    put_photos(s3, 3)
    role = "arn:aws:iam::123456789012:role/backfill"
    machine = sfn.create_state_machine(name="backfill", definition=json.dumps(definition()), roleArn=role)
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "backfill", f"s3://{BUCKET}/uploads/"]
        + ["--state-machine", machine["stateMachineArn"], "--poll", "0.2"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "AWS_ENDPOINT_URL": moto_server},
        preexec_fn=as_typed_in_a_terminal,
    )
    assert proc.stderr is not None
    started = proc.stderr.readline()
    assert started.startswith("started arn:aws:states:"), started + proc.stderr.read()
    execution = started.split()[1]
    time.sleep(1.5)  # watching: the children wait on the held Lambda calls
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted: the run goes on in the cloud" in err
    assert f"aws stepfunctions describe-execution --region us-east-1 --execution-arn {execution}" in err
    assert f"aws stepfunctions stop-execution --region us-east-1 --execution-arn {execution}" in err
    assert sfn.describe_execution(executionArn=execution)["status"] == "RUNNING"
    Router.release.set()
    deadline = time.monotonic() + 120
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.3)
    assert sfn.describe_execution(executionArn=execution)["status"] == "SUCCEEDED"
    keys = s3.list_objects_v2(Bucket=BUCKET, Prefix="results/uploads/")["Contents"]
    assert len(keys) == 3  # the run finished in the cloud after the command left


@pytest.fixture(scope="module")
def emulator():
    from gcp_storage_emulator.server import create_server

    from scripts.local_server import free_port

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket="catalogue-photos")
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_the_gcs_summary_adds_up_the_tallies_the_cloud_run_tasks_wrote(emulator, monkeypatch, tmp_path):
    import io

    from google.cloud import storage

    from cli import backfill_jobs as jobs
    from cli.backfill import summarize

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator)
    bucket = storage.Client().bucket("catalogue-photos")
    for i, view in enumerate(photo_views(ROOT / "samples" / "t-shirt.jpg", 12)):
        buffer = io.BytesIO()
        view.resize((96, 96)).save(buffer, "JPEG", quality=85)
        bucket.blob(f"uploads/{i:03d}.jpg").upload_from_string(buffer.getvalue(), content_type="image/jpeg")

    def task(index: int) -> None:  # as Cloud Run runs one task of three
        env = {"CLOUD_RUN_TASK_INDEX": str(index), "CLOUD_RUN_TASK_COUNT": "3", "CLOUD_RUN_EXECUTION": "exec-1"}
        subprocess.run(
            [sys.executable, str(ROOT / "gcp" / "backfill.py")],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "STORAGE_BUCKET": "catalogue-photos", "LOG_LEVEL": "WARNING",
                 **env},
            capture_output=True,
            check=True,
            timeout=300,
        )  # fmt: skip

    threads = [threading.Thread(target=task, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    job = jobs.Job("gcp", "clothing-backfill", "europe-west1", "catalogue-photos", "uploads/", False, None)
    read = lambda: jobs.gcs_tallies("catalogue-photos", job.run_prefix("exec-1"))  # noqa: E731
    state, tallies = jobs.wait(job, "exec-1", read, 0.2)  # the task count from the tallies; done when all three are
    for thread in threads:
        thread.join()
    totals = summarize(tallies, None)
    assert state == "Succeeded" and totals.workers == 3 and totals.classified == 12
    assert totals.labels["t-shirt"] >= 11 and not totals.failed and not totals.notes
    assert summarize(tallies[:2], 3).notes[0].startswith("1 of 3 tasks wrote no tally")


def test_gs_without_gcloud_is_one_line_and_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "backfill", "gs://catalogue-photos/uploads/", "--region", "europe-west1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(tmp_path)},
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "error: gcloud is not on PATH: install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install) "
        "and run `gcloud auth login`"
    ]


@pytest.mark.skipif(shutil.which("gcloud") is None, reason="the Google Cloud CLI is not installed")
def test_gcloud_takes_the_command_it_is_given_and_its_refusal_is_one_line(tmp_path):
    """The real gcloud parses `run jobs execute` with every flag the command passes, then stops at the missing
    login (nothing here can reach Google): its ERROR line, exit 2; a flag gcloud did not know would say so."""
    proc = subprocess.run(
        [sys.executable, "-m", "cli", "backfill", "gs://catalogue-photos/uploads/,odd/", "--region", "europe-west1"]
        + ["--tasks", "4", "--force"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "CLOUDSDK_CONFIG": str(tmp_path), "CLOUDSDK_CORE_PROJECT": "my-project"},
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "unrecognized" not in proc.stderr
    assert "gcloud run jobs execute ...` failed (exit 1): ERROR: (gcloud.run.jobs.execute)" in proc.stderr


def test_the_commands_each_cloud_runs():
    from cli import backfill_jobs as jobs

    gcp = jobs.Job("gcp", "clothing-backfill", "europe-west1", "photos", "uploads/", True, 20)
    assert jobs.start_commands(gcp) == [
        ["gcloud", "run", "jobs", "execute", "clothing-backfill", "--region", "europe-west1", "--tasks", "20"]
        + ["--update-env-vars", "BACKFILL_PREFIX=uploads/,BACKFILL_FORCE=true", "--async", "--format=json"]
    ]
    azure = jobs.Job("azure", "clothing-backfill", "shop-rg", "photos", "uploads/a b/", False, 8)
    base = ["--name", "clothing-backfill", "--resource-group", "shop-rg"]
    assert jobs.start_commands(azure) == [
        ["az", "containerapp", "job", "update", *base, "--set-env-vars", "BACKFILL_PREFIX=uploads/a b/"]
        + ["BACKFILL_FORCE=false", "BACKFILL_TASKS=8", "--output", "none"],
        ["az", "containerapp", "job", "start", *base, "--output", "json"],
    ]
