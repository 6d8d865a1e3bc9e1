"""The platforms' limits (core/limits.py): the largest image each Lambda front door claims really fits a Lambda
event, and GET reports the limits of the door it came through (docs/limits.md's table: tests/docs)."""

import base64
import json

import pytest

from core.limits import FRONT_DOORS, LAMBDA_PAYLOAD, SMALLEST
from core.settings import Settings
from tests.helpers import ROOT


def test_the_page_starts_from_the_smallest_platform_limit():
    """Before GET answers, the page assumes the smallest front door's limit: the number written in page.html."""
    page = (ROOT / "core" / "page.html").read_text()
    assert f"let limitBytes = {SMALLEST.max_json_image_bytes};" in page


@pytest.mark.parametrize("key", [k for k, door in FRONT_DOORS.items() if door.in_lambda_event])
def test_the_largest_image_fits_a_real_lambda_event(key):
    """An API Gateway event carrying the largest image (raw: base64 in the event; JSON: the JSON string) with a
    browser's usual headers stays under Lambda's 6 MB invocation payload."""
    door = FRONT_DOORS[key]
    headers = {"accept": "*/*", "user-agent": "Mozilla/5.0 " + "x" * 300, "cookie": "session=" + "c" * 4000}
    bodies = [json.dumps({"image": base64.b64encode(b"\xff" * door.max_json_image_bytes).decode(), "top_k": 5})]
    # the largest request GET advertises: a JSON body of max_body_bytes (a long URL list, say)
    padding = door.max_body_bytes - len(json.dumps({"urls": [""], "top_k": 5}))
    bodies.append(json.dumps({"urls": ["https://photos.example/" + "a" * (padding - 23)], "top_k": 5}))
    assert len(bodies[-1]) == door.max_body_bytes
    if door.max_raw_image_bytes is not None:
        bodies.append(base64.b64encode(b"\xff" * door.max_raw_image_bytes).decode())
    for body in bodies:
        event = {"version": "2.0", "headers": headers, "requestContext": {"http": {"method": "POST"}}, "body": body}
        assert len(json.dumps(event)) < LAMBDA_PAYLOAD
    # ... and the request itself is within the front door's own limit (the body as the client sends it).
    assert len(bodies[0]) <= door.max_body_bytes <= door.max_request_bytes
    assert door.max_raw_image_bytes is None or door.max_raw_image_bytes <= door.max_request_bytes


def test_the_service_limits_are_under_every_platform_that_shows_the_function_the_body():
    """Where the function sees a body before any Lambda event limit (GCP, Azure), a too-large image must meet this
    service's 413, not the platform's error."""
    settings = Settings()
    for door in FRONT_DOORS.values():
        if not door.in_lambda_event:
            assert settings.max_body_bytes <= door.max_request_bytes
            assert settings.max_image_bytes <= door.max_json_image_bytes


@pytest.mark.parametrize(
    "event, door",
    [
        ("apigw-v1.json", "aws-rest"),
        ("http-api-v2.json", "aws-http"),
        ("function-url.json", "aws-url"),
        ("alb.json", "aws-alb"),
        ("alb-multi-value.json", "aws-alb"),
        ("vpc-lattice-v1.json", "aws-lattice"),
        ("vpc-lattice-v2.json", "aws-lattice"),
    ],
)
def test_get_reports_the_limits_of_the_front_door_it_came_through(handler, event, door):
    from types import SimpleNamespace

    request = json.loads((ROOT / "tests" / "events" / event).read_text())
    for field in ("httpMethod", "method"):
        if field in request:
            request[field] = "GET"
    if "http" in request.get("requestContext", {}):
        request["requestContext"]["http"]["method"] = "GET"
    answer = handler(request, SimpleNamespace(aws_request_id="r"))
    limits = json.loads(answer["body"])["limits"]
    settings, front = Settings(), FRONT_DOORS[door]
    assert limits["front_door"] == door
    assert limits["max_image_bytes"] == {
        "raw": min(settings.max_image_bytes, front.max_raw_image_bytes or 0),
        "base64_json": min(settings.max_image_bytes, front.max_json_image_bytes),
    }
    assert limits["max_request_bytes"] == min(settings.max_body_bytes, front.max_body_bytes)
    if front.in_lambda_event:  # what fits in the door's event, not the gateway's 10 MB
        assert limits["max_request_bytes"] <= LAMBDA_PAYLOAD - 64 * 1024
