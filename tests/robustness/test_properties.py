"""hypothesis: whatever the event or body, the Lambda handler never raises and always answers well-formed JSON."""

import base64
import json
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CONTEXT = SimpleNamespace(aws_request_id="prop")
STATUSES = {200, 204, 400, 405, 413, 415, 422, 502, 504}
PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
# Request-shaped objects: the real field names with values of any type, so validation is exercised deeply.
request_objects = st.dictionaries(
    st.sampled_from(["url", "image", "urls", "images", "top_k", "probabilities", "other"]),
    json_values | st.just("aGVsbG8=") | st.just("ftp://example.com/x.jpg") | st.integers(-5, 20),
    max_size=4,
)
bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(str.encode),
    request_objects.map(lambda o: json.dumps(o).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
)
content_types = st.sampled_from(
    [
        None,
        "application/json",
        "image/jpeg",
        "application/octet-stream",
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "",
        "image/png; charset=utf-8",
    ]
)
methods = st.sampled_from(["POST", "POST", "GET", "PUT", "DELETE", "OPTIONS", "PATCH", None])
queries = st.one_of(
    st.none(), st.dictionaries(st.sampled_from(["top_k", "probabilities", "x"]), st.text(max_size=5), max_size=3)
)


def check_http_response(response):
    assert isinstance(response, dict)
    assert response["statusCode"] in STATUSES
    assert isinstance(response["headers"], dict)
    if response["statusCode"] != 204:
        body = json.loads(response["body"])
        if response["statusCode"] >= 400:
            assert set(body) == {"error"} and body["error"]["type"] and body["error"]["message"]


@given(method=methods, body=bodies, content_type=content_types, query=queries, encode=st.booleans())
@PROPERTY_SETTINGS
def test_rest_api_v1_events(handler, method, body, content_type, query, encode):
    event = {
        "httpMethod": method,
        "requestContext": {},
        "queryStringParameters": query,
        "headers": None if content_type is None else {"Content-Type": content_type},
        "body": base64.b64encode(body).decode() if encode else body.decode("utf-8", "replace"),
        "isBase64Encoded": encode,
    }
    check_http_response(handler(event, CONTEXT))


@given(method=methods, body=bodies, content_type=content_types, query=queries, encode=st.booleans())
@PROPERTY_SETTINGS
def test_http_api_v2_events(handler, method, body, content_type, query, encode):
    event = {
        "version": "2.0",
        "requestContext": {"http": {"method": method or "POST"}},
        "headers": {} if content_type is None else {"content-type": content_type},
        "queryStringParameters": query,
        "body": base64.b64encode(body).decode() if encode else body.decode("utf-8", "replace"),
        "isBase64Encoded": encode,
    }
    check_http_response(handler(event, CONTEXT))


@given(event=json_values | request_objects | st.text(max_size=50))
@PROPERTY_SETTINGS
def test_direct_invocations(handler, event):
    result = handler(event, CONTEXT)
    json.dumps(result)
    if isinstance(result, dict) and "error" in result:
        assert result["error"]["type"] in {
            "bad_request",
            "payload_too_large",
            "invalid_image",
            "fetch_failed",
            "fetch_timeout",
            "unsupported_media_type",
        }


@pytest.mark.parametrize(
    "event",
    [
        {"body": None, "httpMethod": "POST", "requestContext": {}},
        {"body": {"url": 5}, "httpMethod": "POST", "requestContext": {}, "headers": []},
        {"body": 42, "httpMethod": "POST", "requestContext": {}, "queryStringParameters": ["top_k"]},
        {"version": "2.0", "requestContext": {"http": {}}, "body": None},
        {"httpMethod": "POST", "requestContext": {}, "body": "%%%", "isBase64Encoded": True},
    ],
)
def test_odd_but_real_event_details(handler, event):
    check_http_response(handler(event, CONTEXT))
