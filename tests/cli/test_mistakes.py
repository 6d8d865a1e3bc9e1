"""`python -m cli`: a mistake that would fail every image alike (an option out of range, a model that does not
load, more labels than the model has, an endpoint nobody answers at, an output that cannot be written, inputs that
hold no image) is one line and a non-zero exit before any work; help that names both commands; and a terminal
that shows the answer and a short summary, not the runtime's and the service's log lines."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.cli.test_classify_command import classify, summary_of
from tests.cli.test_endpoint_uploads import Recorder
from tests.helpers import ROOT, SAMPLE


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "cli", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--timeout", "0", "argument --timeout: must be more than 0"),
        ("--timeout", "nan", "argument --timeout: must be more than 0"),
        ("--timeout", "inf", "argument --timeout: must be more than 0"),
        ("--timeout", "-3", "argument --timeout: must be more than 0"),
        ("--timeout", "soon", "argument --timeout: not a number of seconds"),
        ("--retries", "-1", "argument --retries: must be at least 0"),
        ("--top-k", "0", "argument --top-k: must be at least 1"),
        ("--concurrency", "0", "argument --concurrency: must be at least 1"),
    ],
)
def test_an_option_out_of_range_is_a_usage_error_before_any_work(option, value, message, tmp_path):
    out = tmp_path / "out.csv"
    proc = classify(SAMPLE, "--endpoint", "http://127.0.0.1:9/", option, value, "--out", out, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and not out.exists()


@pytest.mark.parametrize(
    "args, env, message",
    [
        ([], {"MODEL_MANIFEST": "/no/such/manifest.json"}, "error: model manifest not found: /no/such/manifest.json"),
        (["--manifest", "/no/such/manifest.json"], {}, "error: model manifest not found: /no/such/manifest.json"),
        (["--top-k", "20"], {}, "error: --top-k 20: the model has 10 labels; give at most --top-k 10"),
        ([], {"MAX_BATCH": "0"}, "error: environment variable MAX_BATCH=0 is out of range"),
    ],
    ids=["MODEL_MANIFEST", "--manifest", "--top-k", "a setting"],
)
def test_a_model_mistake_is_one_line_before_any_image(args, env, message, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(40):
        (folder / f"p{i}.jpg").write_bytes(SAMPLE.read_bytes())
    out = tmp_path / "out.csv"
    proc = classify(folder, "--out", out, "--workers", "2", *args, env=env, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and proc.stderr.startswith(message)
    assert not out.exists()


def test_the_manifest_option_chooses_the_local_model(tmp_path):
    out = tmp_path / "out.csv"
    proc = classify(SAMPLE, "--manifest", ROOT / "model" / "clothing-model.json", "--out", out, "--workers", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert next(csv.DictReader(out.open()))["label"] == "pants"
    refused = classify(SAMPLE, "--manifest", "m.json", "--endpoint", "http://127.0.0.1:9/")
    assert refused.returncode == 2 and "--manifest is the local model's" in refused.stderr


def test_an_endpoints_internal_error_row_carries_its_request_id(tmp_path):
    body = {"error": {"type": "internal_error", "request_id": "req-42", "message": "quote the request id"}}
    endpoint = Recorder(lambda method, _: (500, {"Content-Type": "application/json"}, json.dumps(body).encode()))
    try:
        out = tmp_path / "out.csv"
        proc = classify(SAMPLE, "--endpoint", endpoint.url, "--retries", "0", "--out", out, timeout=60)
    finally:
        endpoint.close()
    assert proc.returncode == 1, proc.stderr[-2000:]
    (row,) = csv.DictReader(out.open())
    assert row["error"].endswith("HTTP 500: internal_error: quote the request id (request id req-42)"), row


@pytest.mark.parametrize("pattern", ["sampels/*.jpg", "samples/*.JPG", "samples/[xyz]*.jpg", "samples/**/*.gif"])
def test_a_pattern_that_matches_nothing_is_said_and_fails(pattern, tmp_path):
    out = tmp_path / "out.csv"
    proc = classify(pattern, "--out", out, timeout=60)
    assert proc.returncode == 2 and not out.exists(), proc.stderr[-2000:]
    assert (
        proc.stderr == f"error: nothing to classify: no image files match {pattern!r} (patterns are case-sensitive)\n"
    )


def test_an_empty_folder_beside_photos_is_said_and_the_run_exits_1(tmp_path):
    (tmp_path / "empty").mkdir()
    alone = classify(tmp_path / "empty", timeout=60)
    assert alone.returncode == 2 and "no image files in the folder" in alone.stderr, alone.stderr
    out = tmp_path / "out.csv"
    proc = classify(tmp_path / "empty", "samples/nothing-*.png", SAMPLE, "--out", out, "--workers", "1")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f"warning: no image files in the folder {tmp_path / 'empty'}" in proc.stderr
    assert "warning: no image files match 'samples/nothing-*.png'" in proc.stderr
    assert [row["label"] for row in csv.DictReader(out.open())] == ["pants"]


@pytest.mark.parametrize(
    "option, path, message",
    [
        ("--out", "no-such-folder/r.csv", "--out no-such-folder/r.csv: the folder no-such-folder does not exist"),
        ("--out", ".", "--out . is a folder"),
        ("--confusion-png", "no-such-folder/cm.png", "the folder no-such-folder does not exist"),
    ],
)
def test_an_output_that_cannot_be_written_is_a_usage_error(option, path, message):
    proc = classify(SAMPLE, option, path, "--evaluate", timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_help_names_both_commands_and_every_option_in_plain_text():
    one = cli("--help")
    assert one.returncode == 0 and "python -m cli classify" in one.stdout and "--manifest" in one.stdout
    many = cli("classify", "--help")
    assert many.returncode == 0 and "--manifest FILE" in many.stdout and "--summary-json" in many.stdout
    assert "``" not in one.stdout + many.stdout
    bare = cli()
    assert bare.returncode == 2 and "python -m cli classify" in bare.stderr


def test_one_photo_prints_the_answer_and_nothing_else():
    proc = cli(SAMPLE, "--top-k", "1")
    assert proc.returncode == 0 and list(json.loads(proc.stdout)) == ["pants"]
    assert proc.stderr == ""  # no runtime notice (XNNPACK), no JSON log line
    verbose = cli(SAMPLE, "--top-k", "1", "--verbose")
    assert json.loads(verbose.stderr)["status"] == 200 and "XNNPACK" not in verbose.stderr
    broken = cli(SAMPLE, env={"MODEL_MANIFEST": "/no/such/manifest.json"})
    assert broken.returncode == 2 and json.loads(broken.stderr)["error"]["type"] == "configuration_error"


def test_a_bulk_run_shows_progress_and_a_short_summary_with_the_confusion_matrix_once(tmp_path):
    folder = tmp_path / "photos" / "pants"
    folder.mkdir(parents=True)
    for i in range(3):
        (folder / f"p{i}.jpg").write_bytes(SAMPLE.read_bytes())
    proc = classify(tmp_path / "photos", "--out", tmp_path / "out.csv", "--workers", "2", "--evaluate")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "XNNPACK" not in proc.stderr and "{" not in proc.stderr  # neither the runtime's notice nor JSON
    assert proc.stderr.count("true \\ predicted") == 1 and "accuracy 100.00% on 3 images" in proc.stderr
    assert "3 images in " in proc.stderr and "3 answered" in proc.stderr
    assert len(proc.stderr.splitlines()) < 20, proc.stderr
    structured = classify(tmp_path / "photos", "--out", tmp_path / "again.csv", "--evaluate", "--summary-json")
    summary = summary_of(structured)
    assert summary["evaluation"]["confusion"] and "true \\ predicted" not in structured.stderr


def test_the_service_log_lines_are_behind_verbose(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    one = cli(bad)
    assert one.returncode == 1 and json.loads(one.stderr)["error"]["type"] == "invalid_image"  # the answer, once
    quiet = classify(bad, SAMPLE, "--out", tmp_path / "quiet.csv", "--workers", "1")
    assert quiet.returncode == 1 and "severity" not in quiet.stderr, quiet.stderr
    verbose = classify(bad, SAMPLE, "--out", tmp_path / "verbose.csv", "--workers", "1", "--verbose")
    logged = [json.loads(line) for line in verbose.stderr.splitlines() if line.startswith('{"severity"')]
    assert sorted(record["status"] for record in logged) == [200, 422], verbose.stderr
