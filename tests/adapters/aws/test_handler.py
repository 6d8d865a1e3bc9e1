"""Every Lambda event shape, from the sample events in tests/events/, through handlers.aws.lambda_handler."""

import base64
import json
from types import SimpleNamespace

import pytest

from handlers.aws import (
    EVENT_SHAPES,
    ApiGatewayV1,
    ApplicationLoadBalancer,
    DirectInvocation,
    HttpApiV2,
    VpcLatticeV1,
    VpcLatticeV2,
)
from tests.helpers import ROOT

CONTEXT = SimpleNamespace(aws_request_id="test-request-id")


@pytest.fixture
def pants_url(image_server, pants_photo):
    base, routes = image_server
    routes["/mlbookcamp-pants"] = (200, {"Content-Type": "image/jpeg"}, pants_photo.read_bytes())
    return base + "/mlbookcamp-pants"


def with_url(event, url):
    event["body"] = json.dumps({"url": url})
    return event


@pytest.mark.parametrize(
    "name, shape",
    [
        ("direct.json", DirectInvocation),
        ("direct-image.json", DirectInvocation),
        ("apigw-v1.json", ApiGatewayV1),
        ("apigw-v1-base64-image.json", ApiGatewayV1),
        ("http-api-v2.json", HttpApiV2),
        ("function-url.json", HttpApiV2),
        ("alb.json", ApplicationLoadBalancer),
        ("alb-multi-value.json", ApplicationLoadBalancer),
        ("vpc-lattice-v1.json", VpcLatticeV1),
        ("vpc-lattice-v2.json", VpcLatticeV2),
    ],
)
def test_shapes_are_recognised_in_order(event, name, shape):
    assert type(next(s for s in EVENT_SHAPES if s.matches(event(name)))) is shape


def test_direct_invocation_returns_the_plain_result(handler, event, pants_url):
    payload = event("direct.json")
    payload["url"] = pants_url
    result = handler(payload, CONTEXT)
    assert len(result) == 10 and max(result, key=result.get) == "pants"


def test_direct_invocation_client_error_is_an_error_object(handler):
    result = handler({"url": "ftp://example.com/x.jpg"}, CONTEXT)
    assert result["error"]["type"] == "bad_request"
    assert handler("not json at all", CONTEXT)["error"]["type"] == "bad_request"
    assert handler(["a", "list"], CONTEXT)["error"]["type"] == "bad_request"


@pytest.mark.parametrize("name", ["apigw-v1.json", "http-api-v2.json"])
def test_http_events_with_url(handler, event, pants_url, name):
    response = handler(with_url(event(name), pants_url), CONTEXT)
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "application/json"
    assert response["headers"]["X-Request-Id"] == "test-request-id"
    body = json.loads(response["body"])
    assert max(body, key=body.get) == "pants"


def test_sample_events_carry_the_committed_sample_photo(event):
    """The events users invoke as typed hold samples/pants.jpg itself (no placeholder to fill in)."""
    photo = base64.b64encode((ROOT / "samples" / "pants.jpg").read_bytes()).decode()
    assert event("apigw-v1-base64-image.json")["body"] == photo == event("function-url.json")["body"]
    assert event("direct-image.json")["image"] == photo


@pytest.mark.parametrize("name, top_k", [("apigw-v1-base64-image.json", 3), ("function-url.json", 2)])
def test_base64_encoded_raw_image_bodies(handler, event, name, top_k):
    response = handler(event(name), CONTEXT)
    assert response["statusCode"] == 200, response["body"]
    body = json.loads(response["body"])
    assert len(body) == top_k and list(body)[0] == "pants"


@pytest.mark.parametrize("name", ["apigw-v1.json", "http-api-v2.json"])
@pytest.mark.parametrize(
    "body, status",
    [
        ("{oops", 400),
        ('{"url": 3}', 400),
        ('{"image": "aGVsbG8="}', 422),
        ("", 400),
    ],
)
def test_http_client_errors(handler, event, name, body, status):
    payload = event(name)
    payload["body"] = body
    response = handler(payload, CONTEXT)
    assert response["statusCode"] == status
    assert "error" in json.loads(response["body"])


def test_v1_headers_are_case_insensitive_and_null_safe(handler, event, pants_photo):
    payload = event("apigw-v1.json")
    payload["headers"] = {"CONTENT-TYPE": "image/jpeg"}
    payload["queryStringParameters"] = None
    payload["body"] = base64.b64encode(pants_photo.read_bytes()).decode()
    payload["isBase64Encoded"] = True
    assert handler(payload, CONTEXT)["statusCode"] == 200
    payload["headers"] = None
    payload["body"] = "{}"
    payload["isBase64Encoded"] = False
    assert handler(payload, CONTEXT)["statusCode"] == 400


def test_get_and_other_methods(handler, event):
    payload = event("http-api-v2.json")
    payload["requestContext"]["http"]["method"] = "GET"
    assert handler(payload, CONTEXT)["statusCode"] == 200
    payload["requestContext"]["http"]["method"] = "DELETE"
    response = handler(payload, CONTEXT)
    assert response["statusCode"] == 405 and "POST" in response["headers"]["Allow"]


def test_bad_configuration_is_a_500_json_not_a_crash(monkeypatch, handler, event):
    monkeypatch.setenv("MAX_BATCH", "sixteen")
    from core.service import get_service

    get_service.cache_clear()
    response = handler(event("http-api-v2.json"), CONTEXT)
    assert response["statusCode"] == 500
    assert json.loads(response["body"])["error"]["type"] == "internal_error"
    assert handler({"url": "http://x/y"}, CONTEXT)["error"]["type"] == "internal_error"


@pytest.mark.parametrize("name, top_k", [("alb.json", 2), ("alb-multi-value.json", 2)])
def test_alb_events_are_answered_in_the_mode_they_came_in(handler, event, name, top_k):
    """A load balancer in multi-value mode reads only multiValueHeaders; both modes want statusDescription."""
    response = handler(event(name), CONTEXT)
    assert response["statusCode"] == 200 and response["statusDescription"] == "200 OK"
    body = json.loads(response["body"])
    assert len(body) == top_k and list(body)[0] == "pants"
    if name == "alb-multi-value.json":
        assert "headers" not in response
        assert response["multiValueHeaders"]["Content-Type"] == ["application/json"]
        assert response["multiValueHeaders"]["X-Request-Id"] == ["test-request-id"]
    else:
        assert "multiValueHeaders" not in response and response["headers"]["Content-Type"] == "application/json"


def test_alb_query_strings_arrive_url_encoded_and_are_decoded(handler, event):
    payload = event("alb-multi-value.json")
    payload["multiValueQueryStringParameters"] = {"top%5Fk": ["1"], "probabilities": ["tr%75e"]}
    body = json.loads(handler(payload, CONTEXT)["body"])
    assert list(body) == ["pants"] and 0 < body["pants"] <= 1


@pytest.mark.parametrize("name, top_k", [("vpc-lattice-v1.json", 3), ("vpc-lattice-v2.json", 1)])
def test_vpc_lattice_events(handler, event, name, top_k):
    response = handler(event(name), CONTEXT)
    assert response["statusCode"] == 200 and response["statusDescription"] == "200 OK"
    assert response["headers"]["Content-Type"] == "application/json"
    body = json.loads(response["body"])
    assert len(body) == top_k and list(body)[0] == "pants"


def test_vpc_lattice_v1_base64_bodies_and_errors(handler, event):
    payload = event("vpc-lattice-v1.json")
    payload["body"] = base64.b64encode(payload["body"].encode()).decode()  # as Lattice sends some bodies
    payload["is_base64_encoded"] = True
    assert handler(payload, CONTEXT)["statusCode"] == 200
    payload["method"] = "DELETE"
    response = handler(payload, CONTEXT)
    assert response["statusCode"] == 405 and response["statusDescription"] == "405 Method Not Allowed"
    assert "POST" in response["headers"]["Allow"]


def init_then(code: str, **env: str):
    """A fresh interpreter that imports the handler (Lambda's init phase), then runs ``code``."""
    import os
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", "import json\nimport handlers.aws as handler\n" + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LOG_LEVEL": "INFO", **env},
    )


def test_the_model_is_loaded_and_run_during_init():
    proc = init_then("from core import get_service\nprint(get_service().classifier.ready)")
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr[-2000:]


def test_a_model_that_does_not_load_at_init_is_a_logged_500_not_a_crash(tmp_path):
    proc = init_then(
        "print(json.dumps(handler.lambda_handler({'image': 'aGk='}, None)))",
        MODEL_MANIFEST=str(tmp_path / "missing.json"),
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["error"]["type"] == "internal_error"
    assert "did not load at init" in proc.stderr and "missing.json" in proc.stderr


# -- the events' own fields: base64 flags, null contexts, multi-value headers --------------------------------------
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
    "request_event",
    [
        rest_event({"Content-Type": "application/json", "content-type": "image/jpeg"}),
        rest_event(multi={"content-type": ["application/json", "image/png"]}),
    ],
    ids=["two keys differing in case", "alb multi-value with two values"],
)
def test_contradictory_content_types_are_refused(handler, request_event):
    answer = handler(request_event, CONTEXT)
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 400 and "different 'content-type' headers" in body["error"]["message"]


def test_the_same_header_twice_with_one_value_is_not_ambiguous(handler):
    event = rest_event({"Content-Type": "application/json", "content-type": "application/json"}, body="{}")
    answer = handler(event, CONTEXT)
    assert json.loads(answer["body"])["error"]["message"].startswith("send exactly one of")


def test_is_base64_encoded_false_as_a_string_means_false(handler):
    body = json.dumps({"image": base64.b64encode((ROOT / "samples" / "pants.jpg").read_bytes()).decode()})
    answer = handler(rest_event({"Content-Type": "application/json"}, body=body, base64_flag="false"), None)
    assert answer["statusCode"] == 200, answer["body"]
    answer = handler(rest_event({"Content-Type": "application/json"}, body=body, base64_flag="maybe"), None)
    assert answer["statusCode"] == 400 and "isBase64Encoded" in answer["body"]


def test_lambda_event_with_a_null_request_context(handler, event):
    payload = event("apigw-v1.json")
    payload["requestContext"] = None
    payload["body"] = "{}"
    response = handler(payload, CONTEXT)
    assert response["statusCode"] == 400 and "error" in json.loads(response["body"])
    v2 = dict(event("http-api-v2.json"), requestContext=None)
    assert handler(v2, CONTEXT)["error"]["type"] == "bad_request"  # not an HTTP event: a direct invocation


def test_bad_base64_in_an_is_base64_encoded_body_says_so(handler, event):
    payload = event("apigw-v1-base64-image.json")
    payload["body"] = "not*base64!"
    response = handler(payload, CONTEXT)
    body = json.loads(response["body"])
    assert response["statusCode"] == 400 and "not valid base64" in body["error"]["message"]


@pytest.mark.parametrize(
    "request_event",
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
def test_two_different_origins_are_a_json_400_with_its_log_line(handler, monkeypatch, caplog, request_event):
    """With CORS on, the Origin header is read for every answer: two different ones (a multi-value front door)
    are refused like any ambiguous header, inside the one error path (answer, log line, metric), never raised."""
    from core.service import get_service

    monkeypatch.setenv("CORS_ALLOW_ORIGINS", "https://shop.example")
    get_service.cache_clear()
    with caplog.at_level("INFO", logger="core"):
        answer = handler(request_event, SimpleNamespace(aws_request_id="two-origins"))
    body = json.loads(answer["body"])
    assert answer["statusCode"] == 400 and "different 'origin' headers" in body["error"]["message"]
    assert "Access-Control-Allow-Origin" not in json.dumps(answer)
    logged = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]
    assert any(line.get("request_id") == "two-origins" and line.get("status") == 400 for line in logged)
