"""AWS Lambda entry point: ``handlers/aws.lambda_handler`` (the book's function name).

Each event shape is one small class whose ``infer()`` recognises it; they are tried in order and the
last one (direct invocation) takes whatever is left. The HTTP shapes read the same four things (method, body,
Content-Type, query) from their own fields and answer in the format their front door expects:

- HTTP API v2 and Lambda Function URLs (``version: "2.0"``, ``requestContext.http``);
- VPC Lattice, event structure v2 (``version: "2.0"``, ``requestContext.targetGroupArn``) and v1
  (``raw_path``, ``method``, ``is_base64_encoded``): answered with a ``statusDescription`` too;
- Application Load Balancer (``requestContext.elb``), single- or multi-value headers mode: answered in the
  mode the request came in (``multiValueHeaders`` for the latter), with ``statusDescription`` ("200 OK");
- API Gateway REST proxy v1 (``httpMethod``), incl. ``isBase64Encoded`` bodies;
- direct invocation and non-proxy integrations, where the event *is* the request JSON (the book's
  console test event ``{"url": ...}``): answered with the plain result, ``{label: score}``. A client error
  is answered with the error object ``{"error": {"type", "message"}}``, not raised, so callers such as
  ``serverless invoke`` get JSON either way.
"""

from __future__ import annotations

import http
import json
from typing import Any
from urllib.parse import unquote_plus

from core import Response, get_service
from core.errors import BadRequest

CLOUD = "aws"
# A Lambda event as it arrives: usually a JSON object, but a direct invocation may send any JSON value.
Event = Any


def _dict(value: object) -> dict[Any, Any]:
    """Event fields that should be objects, tolerating null and malformed test events."""
    return value if isinstance(value, dict) else {}


def _last(value: object) -> Any:
    """A multi-value field's value (the last, as API Gateway's single-value fields hold), or the value itself."""
    if isinstance(value, list):
        return value[-1] if value else None
    return value


def _header(headers: object, name: str) -> str | None:
    """One header's value, whatever the case of its name. Several different values (keys differing only in case,
    or a multi-value list) would let key order decide: that request is refused."""
    values = []
    for key, value in _dict(headers).items():
        if isinstance(key, str) and key.lower() == name:
            values += [str(v) for v in (value if isinstance(value, list) else [value]) if v is not None]
    if len(set(values)) > 1:
        raise BadRequest(f"the request has {len(values)} different '{name}' headers; send one")
    return values[-1] if values else None


def _flag(value: object, field: str) -> bool:
    """A boolean event field, strictly: JSON true/false (or their strings), never the truth of "false"."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadRequest(f"the event's '{field}' must be true or false, not {str(value)[:50]!r}")


def _single(values: object) -> dict[Any, Any]:
    return {key: _last(value) for key, value in _dict(values).items()}


def _body(body: object) -> bytes:
    body = body or ""
    if isinstance(body, (dict, list)):  # a hand-written test event with the JSON inlined, not as a string
        return json.dumps(body).encode()
    # surrogatepass: a body with lone surrogates becomes invalid UTF-8, which core answers with a 400.
    return body.encode("utf-8", "surrogatepass") if isinstance(body, str) else str(body).encode()


class HttpEvent:
    """An HTTP-shaped event: what core needs from it, and core's answer in the front door's format."""

    base64_field = "isBase64Encoded"
    front_door = "aws-rest"  # its key in core/limits.py

    @classmethod
    def door(cls, event: Event) -> str:
        return cls.front_door

    @staticmethod
    def infer(event: Event) -> bool:
        raise NotImplementedError

    @staticmethod
    def method(event: Event) -> str | None:
        return event.get("httpMethod")

    @staticmethod
    def headers(event: Event) -> dict[Any, Any]:
        return _dict(event.get("headers"))

    @staticmethod
    def query(event: Event) -> dict[Any, Any]:
        return _single(event.get("queryStringParameters"))

    @classmethod
    def handle(cls, event: Event, request_id: str | None) -> dict[str, Any]:
        headers, method = cls.headers(event), cls.method(event) or "POST"
        try:
            content_type, accept = _header(headers, "content-type"), _header(headers, "accept")
            base64_body = _flag(event.get(cls.base64_field), cls.base64_field)
        except BadRequest as error:
            return cls.respond(get_service().answer_error(error, method, CLOUD, request_id), event)
        response: Response = get_service().handle_http(
            method,
            _body(event.get("body")),
            content_type,
            cls.query(event),
            cloud=CLOUD,
            request_id=request_id,
            base64_body=base64_body,
            accept=accept,
            front_door=cls.door(event),
        )
        return cls.respond(response, event)

    @staticmethod
    def respond(response: Response, event: Event) -> dict[str, Any]:
        return {
            "statusCode": response.status,
            "headers": response.headers,
            "body": response.body_text(),
            "isBase64Encoded": False,
        }


def _with_status_description(answer: dict[str, Any]) -> dict[str, Any]:
    """Load balancers and VPC Lattice want the status line's text too: "200 OK"."""
    status = answer["statusCode"]
    return {**answer, "statusDescription": f"{status} {http.HTTPStatus(status).phrase}"}


class HttpApiV2(HttpEvent):
    """HTTP API (payload format 2.0) and Function URLs."""

    @classmethod
    def door(cls, event: Event) -> str:
        domain = str(_dict(event.get("requestContext")).get("domainName") or "")
        return "aws-url" if ".lambda-url." in domain else "aws-http"

    @staticmethod
    def infer(event: Event) -> bool:
        return (
            isinstance(event, dict)
            and event.get("version") == "2.0"
            and isinstance(_dict(event.get("requestContext")).get("http"), dict)
        )

    @staticmethod
    def method(event: Event) -> str | None:
        return event["requestContext"]["http"].get("method")


class VpcLatticeV2(HttpEvent):
    """VPC Lattice, event structure version 2: camelCase fields, header values as lists or strings."""

    front_door = "aws-lattice"

    @staticmethod
    def infer(event: Event) -> bool:
        return (
            isinstance(event, dict)
            and event.get("version") == "2.0"
            and "method" in event
            and "targetGroupArn" in _dict(event.get("requestContext"))
        )

    @staticmethod
    def method(event: Event) -> str | None:
        return event.get("method")

    @staticmethod
    def respond(response: Response, event: Event) -> dict[str, Any]:
        return _with_status_description(HttpEvent.respond(response, event))


class VpcLatticeV1(VpcLatticeV2):
    """VPC Lattice, event structure version 1: version 2's request and answer, with snake_case fields."""

    base64_field = "is_base64_encoded"

    @staticmethod
    def infer(event: Event) -> bool:
        return isinstance(event, dict) and "raw_path" in event and "method" in event

    @staticmethod
    def query(event: Event) -> dict[Any, Any]:
        return _single(event.get("query_string_parameters"))


class ApplicationLoadBalancer(HttpEvent):
    """An ALB target group's event, single-value or (with multi-value headers enabled) multi-value mode.

    The load balancer passes the query string as it came, URL-encoded: it is decoded here."""

    front_door = "aws-alb"

    @staticmethod
    def infer(event: Event) -> bool:
        return isinstance(event, dict) and "elb" in _dict(event.get("requestContext"))

    @staticmethod
    def multi_value(event: Event) -> bool:
        return "multiValueHeaders" in event

    @classmethod
    def headers(cls, event: Event) -> dict[Any, Any]:
        return _dict(event.get("multiValueHeaders" if cls.multi_value(event) else "headers"))

    @classmethod
    def query(cls, event: Event) -> dict[Any, Any]:
        raw = event.get("multiValueQueryStringParameters" if cls.multi_value(event) else "queryStringParameters")
        return {
            unquote_plus(str(key)): unquote_plus(str(value)) for key, value in _single(raw).items() if value is not None
        }

    @classmethod
    def respond(cls, response: Response, event: Event) -> dict[str, Any]:
        answer = _with_status_description(HttpEvent.respond(response, event))
        if cls.multi_value(event):  # a load balancer in multi-value mode ignores "headers"
            answer["multiValueHeaders"] = {key: [value] for key, value in answer.pop("headers").items()}
        return answer


class ApiGatewayV1(HttpEvent):
    """API Gateway REST API, Lambda proxy integration (payload format 1.0)."""

    @staticmethod
    def infer(event: Event) -> bool:
        return isinstance(event, dict) and "httpMethod" in event and "requestContext" in event


class DirectInvocation:
    """The event is the request itself: console tests, SDK/CLI invokes, non-proxy integrations."""

    @staticmethod
    def infer(event: Event) -> bool:
        return True

    @staticmethod
    def handle(event: Event, request_id: str | None) -> Any:
        if isinstance(event, (str, bytes)):  # a JSON document passed as a string
            try:
                event = json.loads(event)
            except ValueError:
                pass  # core answers the non-object with a clear 400 error
        return get_service().handle_payload(event, cloud=CLOUD, request_id=request_id).body


EVENT_SHAPES = (HttpApiV2, VpcLatticeV2, ApplicationLoadBalancer, ApiGatewayV1, VpcLatticeV1, DirectInvocation)


def lambda_handler(event: Event, context: Any) -> Any:
    request_id = getattr(context, "aws_request_id", None)
    shape = next(shape for shape in EVENT_SHAPES if shape.infer(event))
    return shape.handle(event, request_id)
