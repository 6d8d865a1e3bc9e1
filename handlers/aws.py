"""AWS Lambda entry point: ``handlers/aws.lambda_handler`` (the book's function name).

Each event shape is one small class whose ``infer()`` recognises it; they are tried in order and the
last one (direct invocation) takes whatever is left:

- HTTP API v2 and Lambda Function URLs (``version: "2.0"``): answered with statusCode/headers/body;
- API Gateway REST proxy v1 (``httpMethod``), incl. ``isBase64Encoded`` bodies: same;
- direct invocation and non-proxy integrations, where the event *is* the request JSON (the book's
  console test event ``{"url": ...}``): answered with the plain result, ``{label: score}``. A client error
  is answered with the error object ``{"error": {"type", "message"}}``, not raised, so callers such as
  ``serverless invoke`` get JSON either way.
"""
from __future__ import annotations

import json

from core import Response, get_service

CLOUD = "aws"


def _dict(value) -> dict:
    """Event fields that should be objects, tolerating null and malformed test events."""
    return value if isinstance(value, dict) else {}


def _header(headers, name: str):
    for key, value in _dict(headers).items():
        if key.lower() == name:
            return value
    return None


def _body(event) -> bytes:
    body = event.get("body") or ""
    if isinstance(body, (dict, list)):  # a hand-written test event with the JSON inlined, not as a string
        return json.dumps(body).encode()
    # surrogatepass: a body with lone surrogates becomes invalid UTF-8, which core answers with a 400.
    return body.encode("utf-8", "surrogatepass") if isinstance(body, str) else str(body).encode()


def _answer_http(event, method, request_id) -> dict:
    """An HTTP-shaped event through core, answered in API Gateway's response format."""
    response: Response = get_service().handle_http(
        method or "POST", _body(event), _header(event.get("headers"), "content-type"),
        _dict(event.get("queryStringParameters")), cloud=CLOUD, request_id=request_id,
        base64_body=bool(event.get("isBase64Encoded")))
    return {
        "statusCode": response.status,
        "headers": response.headers,
        "body": "" if response.body is None else response.json(),
        "isBase64Encoded": False,
    }


class HttpApiV2:
    """HTTP API (payload format 2.0) and Function URLs."""

    @staticmethod
    def infer(event) -> bool:
        return isinstance(event, dict) and event.get("version") == "2.0" \
            and isinstance(_dict(event.get("requestContext")).get("http"), dict)

    @staticmethod
    def handle(event, request_id):
        return _answer_http(event, event["requestContext"]["http"].get("method"), request_id)


class ApiGatewayV1:
    """API Gateway REST API, Lambda proxy integration (payload format 1.0)."""

    @staticmethod
    def infer(event) -> bool:
        return isinstance(event, dict) and "httpMethod" in event and "requestContext" in event

    @staticmethod
    def handle(event, request_id):
        return _answer_http(event, event.get("httpMethod"), request_id)


class DirectInvocation:
    """The event is the request itself: console tests, SDK/CLI invokes, non-proxy integrations."""

    @staticmethod
    def infer(event) -> bool:
        return True

    @staticmethod
    def handle(event, request_id):
        if isinstance(event, (str, bytes)):  # a JSON document passed as a string
            try:
                event = json.loads(event)
            except ValueError:
                pass  # core answers the non-object with a clear 400 error
        return get_service().handle_payload(event, cloud=CLOUD, request_id=request_id).body


EVENT_SHAPES = (HttpApiV2, ApiGatewayV1, DirectInvocation)


def lambda_handler(event, context):
    request_id = getattr(context, "aws_request_id", None)
    shape = next(shape for shape in EVENT_SHAPES if shape.infer(event))
    return shape.handle(event, request_id)
