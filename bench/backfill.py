"""Benchmark: the backfill (docs/backfill.md) of 1,000 photos through the local engines: moto's Step Functions
running the project's state machine with its children reaching the Lambda handler over loopback, started and
watched by `python -m cli backfill`; and gcp/backfill.py's Cloud Run tasks (two processes, one per core) against
gcp-storage-emulator. Photos per second end to end, and where the time goes: listing, the skip check (reading a
result back), opening a photo (its metadata, and the check that it did not change meanwhile), classifying
(download, decode, inference) and writing results, summed over every worker.

    python -m bench.run backfill          # --smoke: 50 photos

Everything runs on this machine's cores: moto's children are threads of one process, so the per-photo times
include waiting for the interpreter lock; the emulator is a Python server on the same cores. The numbers rank the
stages and bound a run; a cloud's own per-photo time is docs/backfill.md's to estimate.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import ROOT, VENV_PY, publish

BUCKET = "shop-photos-backfill"
GCS_BUCKET = "backfill-bench"
TASKS = 2
STAGES = ("listing", "skip check", "open photo", "classify", "result writes")


class Timers:
    """Seconds per stage, summed over threads, from methods wrapped for the length of a run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.lock = threading.Lock()

    @contextlib.contextmanager
    def wrapped(self, cls, methods: dict[str, str]) -> Iterator[None]:
        originals = {name: getattr(cls, name) for name in methods}

        def timed(name: str, stage: str):
            original = originals[name]

            def method(*args, **kwargs):
                started = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    with self.lock:
                        self.seconds[stage] += time.perf_counter() - started

            return method

        for name, stage in methods.items():
            setattr(cls, name, timed(name, stage))
        try:
            yield
        finally:
            for name, original in originals.items():
                setattr(cls, name, original)


STORE_STAGES = {"read_result": "skip check", "open": "open photo", "superseded": "open photo", "write": "result writes"}


def photos(count: int) -> list[bytes]:
    from tests.helpers import photo_views

    out = []
    for view in photo_views(ROOT / "samples" / "pants.jpg", count):
        buffer = io.BytesIO()
        view.save(buffer, "JPEG", quality=85)  # the sample's crops, 240-533 px a side, as a shop's thumbnails
        out.append(buffer.getvalue())
    return out


def aws(count: int, images: list[bytes]) -> dict:
    """The CLI's s3:// path against moto in-process; the Lambda handler timed around its store calls."""
    from moto import mock_aws

    from tests.cli.test_backfill_command import CREDENTIALS, LambdaApi, serve

    server, url = serve(LambdaApi)
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL_LAMBDA": url, "STORAGE_BUCKET": BUCKET, "LOG_LEVEL": "WARNING"}
    saved = {name: os.environ.get(name) for name in [*env, "AWS_ENDPOINT_URL"]}
    os.environ.update(env)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
            return _aws_runs(count, images)
    finally:
        server.shutdown()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _aws_runs(count: int, images: list[bytes]) -> dict:
    import boto3

    from handlers.aws import lambda_handler  # noqa: F401 - the service loads (the model) before the clock starts
    from handlers.s3_uploads import S3Bucket
    from tests.cli.test_backfill_command import definition

    s3, sfn = boto3.client("s3"), boto3.client("stepfunctions")
    s3.create_bucket(Bucket=BUCKET)
    for i in range(count):
        s3.put_object(Bucket=BUCKET, Key=f"uploads/catalogue/{i:05d}.jpg", Body=images[i % len(images)])
    machine = sfn.create_state_machine(
        name="backfill", definition=json.dumps(definition(False)), roleArn="arn:aws:iam::123456789012:role/backfill"
    )["stateMachineArn"]
    started = time.perf_counter()
    keys = sum(page.get("KeyCount", 0) for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET))
    listing = time.perf_counter() - started
    assert keys == count, keys
    runs = {}
    for label in ("first run", "rerun (all skipped)"):
        timers = Timers()
        timers.seconds["listing"] = listing
        with timers.wrapped(S3Bucket, STORE_STAGES), _timed_handler(timers):
            summary, seconds = _cli(machine)
        runs[label] = _row(summary, seconds, timers, count)
    return runs


@contextlib.contextmanager
def _timed_handler(timers: Timers) -> Iterator[None]:
    """The whole child invocation's time; classify is what is left after the store calls."""
    from handlers import backfill

    with timers.wrapped(backfill.BackfillBatch, {"process": "invocation"}):
        yield


def _cli(machine: str) -> tuple[dict, float]:
    from cli.backfill import main

    err = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stderr(err):
        code = main([f"s3://{BUCKET}/uploads/", "--state-machine", machine, "--poll", "0.2", "--summary-json"])
    seconds = time.perf_counter() - started
    text = err.getvalue()
    if code != 0:
        raise RuntimeError(text[-3000:])
    return json.loads(text[text.index("{\n") : text.rindex("}") + 1]), seconds


def _row(summary: dict, seconds: float, timers: Timers, count: int) -> dict:
    stages = dict(timers.seconds)
    whole = stages.pop("invocation", 0.0) + stages.pop("task", 0.0)
    store = sum(stages.get(s, 0.0) for s in ("skip check", "open photo", "result writes"))
    stages["classify"] = max(whole - store - (stages.get("listing", 0.0) if "task" in timers.seconds else 0), 0.0)
    return {
        "photos": count,
        "classified": summary["classified"],
        "skipped": summary["skipped"],
        "seconds": round(seconds, 2),
        "photos_per_second": round(count / seconds, 1),
        "stage_seconds": {s: round(stages.get(s, 0.0), 3) for s in STAGES},
        "stage_ms_per_photo": {s: round(1000 * stages.get(s, 0.0) / count, 2) for s in STAGES},
    }


def gcp(count: int, images: list[bytes]) -> dict:
    """gcp/backfill.py's tasks as Cloud Run runs them, each timed by this module's --gcp-task wrapper."""
    from gcp_storage_emulator.server import create_server
    from google.cloud import storage

    from scripts.local_server import free_port

    for name in ("api.object", "gcp_storage_emulator.storage"):  # a result not there yet is the normal case here
        logging.getLogger(name).setLevel(logging.CRITICAL)
    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=GCS_BUCKET)
    server.start()
    emulator = f"http://127.0.0.1:{port}"
    try:
        os.environ["STORAGE_EMULATOR_HOST"] = emulator
        bucket = storage.Client().bucket(GCS_BUCKET)
        for i in range(count):
            bucket.blob(f"uploads/{i:05d}.jpg").upload_from_string(images[i % len(images)], content_type="image/jpeg")
        return {label: _gcp_run(emulator, count, label) for label in ("first run", "rerun (all skipped)")}
    finally:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
        server.stop()


def _gcp_run(emulator: str, count: int, label: str) -> dict:
    execution = "first" if label == "first run" else "second"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'gcp'}", "STORAGE_EMULATOR_HOST": emulator}
    env.update({"STORAGE_BUCKET": GCS_BUCKET, "CLOUD_RUN_TASK_COUNT": str(TASKS), "CLOUD_RUN_EXECUTION": execution})
    env["LOG_LEVEL"] = "WARNING"
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [str(VENV_PY), str(Path(__file__).resolve()), "--gcp-task"],
            cwd=ROOT,
            env={**env, "CLOUD_RUN_TASK_INDEX": str(i)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(TASKS)
    ]
    outputs = [p.communicate(timeout=1800) for p in procs]
    seconds = time.perf_counter() - started
    if any(p.returncode for p in procs):
        raise RuntimeError("\n".join(err[-2000:] for _, err in outputs))
    timers, summary = Timers(), {"classified": 0, "skipped": 0}
    for out, _ in outputs:
        task = json.loads(out.strip().splitlines()[-1])
        for stage, value in task["seconds"].items():
            timers.seconds[stage] += value
        summary["classified"] += task["tally"]["classified"]
        summary["skipped"] += task["tally"]["skipped"]
    return _row(summary, seconds, timers, count)


def gcp_task() -> None:
    """One Cloud Run task (gcp/backfill.py's main) with its store calls and its listing timed; prints its tally
    and the seconds per stage as one JSON line."""
    import importlib.util

    from gcs_bucket import GcsBucket  # gcp/ is on PYTHONPATH, as the bundle's root is

    # By its path: `import backfill` would find this file, whose folder is first on the path.
    spec = importlib.util.spec_from_file_location("gcp_backfill", ROOT / "gcp" / "backfill.py")
    assert spec is not None and spec.loader is not None
    backfill: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(backfill)

    timers = Timers()
    real_shard = backfill.shard

    def timed_shard(listing, index, count):
        started = time.perf_counter()
        listed = list(listing)
        timers.seconds["listing"] += time.perf_counter() - started
        return real_shard(listed, index, count)

    backfill.shard = timed_shard
    out = io.StringIO()
    started = time.perf_counter()
    with timers.wrapped(GcsBucket, STORE_STAGES), contextlib.redirect_stdout(out):
        code = backfill.main()
    timers.seconds["task"] = time.perf_counter() - started
    tally = json.loads(out.getvalue().strip().splitlines()[-1])
    print(json.dumps({"tally": tally, "seconds": dict(timers.seconds)}))
    sys.exit(code)


def run(smoke: bool = False) -> dict | None:
    count = 50 if smoke else 1000
    images = photos(min(count, 200))
    result: dict[str, Any] = {"photos": count, "aws_moto": aws(count, images), "gcp_emulator": gcp(count, images)}
    labels, values = [], []
    for engine, runs in (("moto Step Functions", result["aws_moto"]), ("Cloud Run tasks", result["gcp_emulator"])):
        for label, row in runs.items():
            labels.append(f"{engine}, {label}")
            values.append(row["photos_per_second"])
    return publish("backfill", result, f"backfill of {count} photos, local engines", labels, values, "photos/s")


if __name__ == "__main__":
    if "--gcp-task" in sys.argv:
        gcp_task()
    else:
        print(json.dumps(run("--smoke" in sys.argv), indent=2))
