"""The handler under Lambda's real Python runtime client (awslambdaric) against a loopback Runtime API, in both
of Lambda's log formats: the answers the runtime posts back, the request's log line and its EMF metrics record
exactly as the runtime writes them to the log."""

from __future__ import annotations

import base64
import json
import time

import pytest

from tests.adapters.aws.runtime_api import FUNCTION, lambda_runtime
from tests.helpers import ROOT

PANTS = (ROOT / "samples" / "pants.jpg").read_bytes()
REST_EVENT = {
    "resource": "/predict",
    "path": "/predict",
    "httpMethod": "POST",
    "headers": {"Content-Type": "image/jpeg"},
    "queryStringParameters": {"top_k": "1"},
    "requestContext": {"resourcePath": "/predict", "httpMethod": "POST", "stage": "dev"},
    "body": base64.b64encode(PANTS).decode(),
    "isBase64Encoded": True,
}
BAD_JSON = {**REST_EVENT, "headers": {"Content-Type": "application/json"}, "body": "{nope", "isBase64Encoded": False}

# The Embedded Metric Format's rules (CloudWatch documentation, "Specification: Embedded metric format").
UNITS = [
    *("Seconds Microseconds Milliseconds Bytes Kilobytes Megabytes Gigabytes Terabytes Bits Kilobits".split()),
    *("Megabits Gigabits Terabits Percent Count None".split()),
    *(f"{u}/Second" for u in "Bytes Kilobytes Megabytes Gigabytes Terabytes Bits Kilobits Megabits Gigabits".split()),
    "Terabits/Second",
    "Count/Second",
]
EMF_SCHEMA = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": {"type": "string", "minLength": 1, "maxLength": 1024},
                            "Dimensions": {
                                "type": "array",
                                "items": {
                                    "type": "array",
                                    "maxItems": 30,
                                    "items": {"type": "string", "minLength": 1, "maxLength": 250},
                                },
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "properties": {
                                        "Name": {"type": "string", "minLength": 1, "maxLength": 1024},
                                        "Unit": {"enum": UNITS},
                                        "StorageResolution": {"enum": [1, 60]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def assert_valid_emf(record: dict) -> None:
    import jsonschema_rs

    jsonschema_rs.validate(EMF_SCHEMA, record)
    for directive in record["_aws"]["CloudWatchMetrics"]:
        for dimension in (name for dimensions in directive["Dimensions"] for name in dimensions):
            assert isinstance(record.get(dimension), str) and 0 < len(record[dimension]) <= 1024, dimension
        for metric in directive["Metrics"]:
            value = record.get(metric["Name"])
            assert isinstance(value, (int, float)) and not isinstance(value, bool), metric


def lines_for(log, request_id: str) -> list[str]:
    """The log's lines about one invocation: its request id appears in the runtime's prefix, our JSON or both."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [line for line in log.read_text().splitlines() if request_id in line]
        if len(found) >= 2:  # the request's log line and its metrics record
            return found
        time.sleep(0.05)
    raise AssertionError(f"no log lines for {request_id}:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module", params=["Text", "JSON"])
def runtime(request):
    with lambda_runtime(request.param) as (api, log):
        yield request.param, api, log


def test_answers_are_what_the_runtime_posts_back(runtime):
    _, api, _ = runtime
    _, outcome = api.invoke(REST_EVENT)
    assert outcome.kind == "response"
    answer = json.loads(outcome.body)
    assert answer["statusCode"] == 200 and list(json.loads(answer["body"])) == ["pants"]
    _, outcome = api.invoke(BAD_JSON)  # a client's mistake is an answer, not a function error
    answer = json.loads(outcome.body)
    assert outcome.kind == "response" and answer["statusCode"] == 400
    assert json.loads(answer["body"])["error"]["type"] == "bad_request"
    _, outcome = api.invoke({"url": "ftp://example.com/x.jpg"})  # a direct invocation's mistake: the error object
    assert outcome.kind == "response" and json.loads(outcome.body)["error"]["type"] == "bad_request"
    assert not api.init_errors


def test_the_log_line_and_the_metrics_record_as_the_runtime_writes_them(runtime):
    log_format, api, log = runtime
    request_id, outcome = api.invoke(BAD_JSON)
    assert json.loads(outcome.body)["statusCode"] == 400
    found = lines_for(log, request_id)
    records = [json.loads(line) for line in found if line.startswith("{")]
    metrics = [r for r in records if "_aws" in r]
    assert len(metrics) == 1, found  # one EMF record per request, a line of its own: CloudWatch reads it
    emf = metrics[0]
    assert_valid_emf(emf)
    assert emf["Function"] == FUNCTION and emf["request_id"] == request_id  # Lambda's request id, everywhere
    assert emf["ClientErrors"] == 1 and emf["ServerErrors"] == 0 and emf["Requests"] == 1 and emf["status"] == 400
    names = {m["Name"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"Latency", "Requests", "Images", "ClientErrors", "ServerErrors", "ColdStart"} <= names
    if log_format == "Text":  # the runtime's prefix, then our JSON
        line = next(line for line in found if line.startswith("[WARNING]"))
        level, _, prefixed_id, message = line.split("\t", 3)
        logged = json.loads(message)
        assert prefixed_id == request_id
    else:  # one JSON object: the runtime's fields, ours nested as an object (not an escaped string)
        line = next(r for r in records if "_aws" not in r)
        assert line["level"] == "WARNING" and line["requestId"] == request_id and line["logger"] == "core"
        logged = line["message"]
    assert logged["request_id"] == request_id and logged["status"] == 400 and logged["error"] == "bad_request"


def test_a_successful_request_reports_its_stages_and_the_first_one_its_cold_start(runtime):
    _, api, log = runtime
    request_id, _ = api.invoke(REST_EVENT)
    emf = next(json.loads(line) for line in lines_for(log, request_id) if line.startswith('{"_aws"'))
    assert_valid_emf(emf)
    assert emf["Images"] == 1 and emf["ClientErrors"] == 0 and emf["ColdStart"] == 0  # not the first request
    assert emf["InferenceTime"] > 0 and emf["DecodeTime"] > 0 and emf["Latency"] >= emf["InferenceTime"]
    assert emf["Clothing"] + emf["NotSure"] + emf["NotClothing"] == emf["Images"]  # each image's verdict: drift
    first = [json.loads(line) for line in log.read_text().splitlines() if line.startswith('{"_aws"')][0]
    assert first["ColdStart"] == 1  # the instance's first request


def test_snapstart_hooks_warm_before_the_snapshot_and_reset_after_the_restore():
    """AWS_LAMBDA_INITIALIZATION_TYPE=snap-start: the runtime runs the before-snapshot hooks (the model loaded and
    run once, so it is in the snapshot), asks for restore/next, then runs the after-restore hooks (a new instance:
    its first request counts as a cold start, no connection survives from the snapshot)."""
    with lambda_runtime("Text", AWS_LAMBDA_INITIALIZATION_TYPE="snap-start") as (api, log):
        assert api.snapshot_taken.wait(60), log.read_text()[-3000:]
        time.sleep(0.2)
        assert '"event": "restored"' not in log.read_text()  # nothing of the restore before it happens
        api.restore()
        request_id, outcome = api.invoke(REST_EVENT)
        assert json.loads(outcome.body)["statusCode"] == 200
        text = log.read_text()
        assert text.index('"event": "restored"') < text.index(request_id)  # the hook ran before the request
        emf = next(json.loads(line) for line in lines_for(log, request_id) if line.startswith('{"_aws"'))
        assert emf["ColdStart"] == 1 and emf["InferenceTime"] > 0
        print(f"\nfirst request after the restore: {emf['Latency']} ms (inference {emf['InferenceTime']} ms)")
        assert not api.init_errors and not api.restore_errors


def test_a_broken_model_is_answered_with_json_500s_not_a_runtime_crash(tmp_path):
    """The model loads in the init phase; a missing one must not fail the init (the runtime would report an init
    error and Lambda retry the cold start on every request): each request gets a JSON 500 saying so."""
    with lambda_runtime("Text", MODEL_MANIFEST=str(tmp_path / "missing.json")) as (api, log):
        request_id, outcome = api.invoke(REST_EVENT)
        assert outcome.kind == "response" and not api.init_errors
        answer = json.loads(outcome.body)
        assert answer["statusCode"] == 500 and json.loads(answer["body"])["error"]["type"] == "internal_error"
        text = log.read_text()
        assert "the model did not load at init" in text and "Traceback" not in text
        emf = next(json.loads(line) for line in lines_for(log, request_id) if line.startswith('{"_aws"'))
        assert emf["ServerErrors"] == 1
