"""HTTP details the third adversarial run found (issue 22, items 11-14): caches, HEAD, JSON errors on every path,
ambiguous requests refused, empty images. Against the real functions-framework server and the Lambda handler."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from types import SimpleNamespace

import pytest

from tests.helpers import ROOT, invocation


@pytest.fixture(scope="module")
def server(gcp_server):
    return gcp_server()[0]


def call(url, method="GET", body=None, headers=None):
    """(status, headers, body bytes)."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_answers_vary_on_accept_and_json_is_never_sniffed(server):
    for accept in ("application/json", "text/html"):
        status, headers, _ = call(server, headers={"Accept": accept})
        assert status == 200 and "Accept" in headers["Vary"]
    status, headers, _ = call(server, "POST", b"{}", {"Content-Type": "application/json"})
    assert status == 400 and headers["X-Content-Type-Options"] == "nosniff" and "Accept" in headers["Vary"]
    status, headers, body = call(server, "OPTIONS")
    assert status == 204 and body == b"" and "Content-Type" not in headers  # was labelled text/html
    assert "HEAD" in headers["Allow"]


def test_head_answers_like_get_without_a_body(server):
    status, headers, body = call(server, "HEAD", headers={"Accept": "application/json"})
    assert status == 200 and headers["Content-Type"].startswith("application/json") and body == b""
    status, headers, body = call(server, "HEAD", headers={"Accept": "text/html"})
    assert status == 200 and headers["Content-Type"].startswith("text/html") and body == b""


@pytest.mark.parametrize("path", ["/favicon.ico", "/robots.txt"])
def test_the_frameworks_own_paths_answer_json_404_with_a_request_id(server, path):
    status, headers, body = call(server.rstrip("/") + path)
    assert status == 404 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["error"]["type"] == "not_found" and headers["X-Request-Id"]


def rest_event(headers=None, multi=None, body="{}", base64_flag=False):
    event = {
        "resource": "/predict",
        "path": "/predict",
        "httpMethod": "POST",
        "headers": headers or {},
        "requestContext": {"resourcePath": "/predict", "httpMethod": "POST", "stage": "dev"},
        "body": body,
        "isBase64Encoded": base64_flag,
    }
    if multi is not None:
        event = {**event, "requestContext": {"elb": {"targetGroupArn": "arn:x"}}, "multiValueHeaders": multi}
        del event["headers"]
    return event


@pytest.mark.parametrize(
    "event",
    [
        rest_event({"Content-Type": "application/json", "content-type": "image/jpeg"}),
        rest_event(multi={"content-type": ["application/json", "image/png"]}),
    ],
    ids=["two keys differing in case", "alb multi-value with two values"],
)
def test_contradictory_content_types_are_refused(handler, event):
    answer = handler(event, SimpleNamespace(aws_request_id="r"))
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 400 and "different 'content-type' headers" in body["error"]["message"]


def test_the_same_header_twice_with_one_value_is_not_ambiguous(handler):
    event = rest_event({"Content-Type": "application/json", "content-type": "application/json"}, body="{}")
    answer = handler(event, SimpleNamespace(aws_request_id="r"))
    assert json.loads(answer["body"])["error"]["message"].startswith("send exactly one of")


def test_is_base64_encoded_false_as_a_string_means_false(handler):
    body = json.dumps({"image": base64.b64encode((ROOT / "samples" / "pants.jpg").read_bytes()).decode()})
    answer = handler(rest_event({"Content-Type": "application/json"}, body=body, base64_flag="false"), None)
    assert answer["statusCode"] == 200, answer["body"]
    answer = handler(rest_event({"Content-Type": "application/json"}, body=body, base64_flag="maybe"), None)
    assert answer["statusCode"] == 400 and "isBase64Encoded" in answer["body"]


@pytest.mark.parametrize(
    "host", ["exa mple.com", "-x-.test", "a..b", "x_-.example", "bad-.example", "a" * 64 + ".test"]
)
def test_host_names_that_can_never_resolve_are_400_not_502(fresh_service, host):
    from core.service import get_service

    answer = get_service().handle(invocation({"url": f"http://{host}/x.jpg"}))
    assert answer.status == 400 and "not a valid host name" in answer.body["error"]["message"], answer.body


def test_real_host_names_pass_the_check():
    from core.fetch import _valid_host

    for host in ("example.com", "a-b.example.co.uk", "xn--bcher-kva.example", "bücher.example", "_dmarc.x.com"):
        assert _valid_host(host), host
    assert _valid_host("127.0.0.1") and _valid_host("::1")


@pytest.mark.parametrize(
    "body, content_type",
    [(b"", "image/jpeg"), (b'{"image": ""}', "application/json"), (b'{"image": "data:image/png;base64,"}', None)],
    ids=["raw", "base64", "data url"],
)
def test_an_empty_image_is_422_as_documented(server, body, content_type):
    status, _, answer = call(server, "POST", body, {"Content-Type": content_type or "application/json"})
    error = json.loads(answer)["error"]
    assert status == 422 and error["type"] == "invalid_image" and "empty" in error["message"]


@pytest.mark.parametrize(
    "event",
    [
        rest_event(multi={"origin": ["https://shop.example", "https://evil.example"]}),
        {
            "version": "2.0",
            "path": "/predict",
            "method": "GET",
            "headers": {"origin": ["https://shop.example", "https://evil.example"]},
            "body": "",
            "isBase64Encoded": False,
            "requestContext": {"targetGroupArn": "arn:aws:vpc-lattice:us-east-1:1:targetgroup/tg-1"},
        },
    ],
    ids=["alb multi-value", "vpc lattice v2"],
)
def test_two_different_origins_are_a_json_400_with_its_log_line(handler, monkeypatch, caplog, event):
    """With CORS on, the Origin header is read for every answer: two different ones (a multi-value front door)
    are refused like any ambiguous header, inside the one error path (answer, log line, metric), never raised."""
    from core.service import get_service

    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "https://shop.example")
    get_service.cache_clear()
    with caplog.at_level("INFO", logger="core"):
        answer = handler(event, SimpleNamespace(aws_request_id="two-origins"))
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 400 and "different 'origin' headers" in body["error"]["message"]
    assert "Access-Control-Allow-Origin" not in json.dumps(answer)
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]
    assert any(line.get("request_id") == "two-origins" and line.get("status") == 400 for line in logged)
