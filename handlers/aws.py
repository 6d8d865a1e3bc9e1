"""AWS Lambda entry point: ``handlers/aws.lambda_handler`` (the book's function name).

Each event shape is one small object behind one protocol (``EventShape``: ``matches``, ``to_request``,
``to_answer``) that only translates; they are tried in order and the last one (direct invocation) takes whatever
is left, and the entry point calls the service once. The HTTP shapes read the same things (method, headers,
query, body, base64 flag) from their own fields and answer in the format their front door expects:

- HTTP API v2 and Lambda Function URLs (``version: "2.0"``, ``requestContext.http``);
- VPC Lattice, event structure v2 (``version: "2.0"``, ``requestContext.targetGroupArn``) and v1
  (``raw_path``, ``method``, ``is_base64_encoded``): answered with a ``statusDescription`` too;
- Application Load Balancer (``requestContext.elb``), single- or multi-value headers mode: answered in the
  mode the request came in (``multiValueHeaders`` for the latter), with ``statusDescription`` ("200 OK");
- API Gateway REST proxy v1 (``httpMethod``), incl. ``isBase64Encoded`` bodies;
- S3 ObjectCreated notifications (``--param="bucket=NAME"``): not a request but photos to classify, each
  result written to the bucket (``s3_uploads.py``), checked before the shapes below;
- direct invocation and non-proxy integrations, where the event *is* the request JSON (the book's
  console test event ``{"url": ...}``): answered with the plain result, ``{label: score}``. A client error
  is answered with the error object ``{"error": {"type", "message"}}``, not raised, so callers such as
  ``serverless invoke`` get JSON either way.
"""

from __future__ import annotations

import http
import json
from typing import Any, Protocol
from urllib.parse import unquote_plus

from core import get_service
from core.contract import Headers, Query, Request, Response
from core.errors import BadRequest

from .backfill import BackfillBatch
from .s3_uploads import S3Uploads

CALLER = "aws"
# A Lambda event as it arrives: usually a JSON object, but a direct invocation may send any JSON value.
Event = Any


def _dict(value: object) -> dict[Any, Any]:
    """Event fields that should be objects, tolerating null and malformed test events."""
    return value if isinstance(value, dict) else {}


def _flag(value: object, field: str) -> bool:
    """A boolean event field, strictly: JSON true/false (or their strings), never the truth of "false"."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise BadRequest(f"the event's '{field}' must be true or false, not {str(value)[:50]!r}")


def _query(single: object, multi: object = None) -> Query:
    """The query from its multi-value field where the event has one (a repeated parameter is then seen and refused,
    as on every door), else from its single-value one."""
    return Query(_dict(multi) or _dict(single))


def _body(body: object) -> bytes:
    body = body or ""
    if isinstance(body, (dict, list)):  # a hand-written test event with the JSON inlined, not as a string
        return json.dumps(body).encode()
    # surrogatepass: a body with lone surrogates becomes invalid UTF-8, which core answers with a 400.
    return body.encode("utf-8", "surrogatepass") if isinstance(body, str) else str(body).encode()


class HttpShape:
    """An HTTP-shaped event: a ``Request`` from its fields, and the service's answer in its front door's format.
    The shapes differ only in where they keep the method, headers, query and base64 flag, and how they answer."""

    front_door = "aws-rest"  # its key in core/limits.py
    base64_field = "isBase64Encoded"

    def matches(self, event: Event) -> bool:
        raise NotImplementedError

    def method(self, event: Event) -> str:
        return str(event.get("httpMethod") or "POST")

    def headers(self, event: Event) -> object:
        return event.get("headers")

    def query(self, event: Event) -> Query:
        return _query(event.get("queryStringParameters"), event.get("multiValueQueryStringParameters"))

    def door(self, event: Event) -> str:
        return self.front_door

    def to_request(self, event: Event, request_id: str | None) -> Request:
        return Request(
            method=self.method(event),
            headers=Headers(_dict(self.headers(event))),
            query=self.query(event),
            body=_body(event.get("body")),
            request_id=request_id,
            caller=CALLER,
            front_door=self.door(event),
            base64_body=_flag(event.get(self.base64_field), self.base64_field),
        )

    def to_answer(self, response: Response, event: Event) -> Any:
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


class HttpApiV2(HttpShape):
    """HTTP API (payload format 2.0) and Function URLs."""

    def matches(self, event: Event) -> bool:
        return (
            isinstance(event, dict)
            and event.get("version") == "2.0"
            and isinstance(_dict(event.get("requestContext")).get("http"), dict)
        )

    def method(self, event: Event) -> str:
        return str(event["requestContext"]["http"].get("method") or "POST")

    def door(self, event: Event) -> str:
        domain = str(_dict(event.get("requestContext")).get("domainName") or "")
        return "aws-url" if ".lambda-url." in domain else "aws-http"


class VpcLatticeV2(HttpShape):
    """VPC Lattice, event structure version 2: camelCase fields, header values as lists or strings."""

    front_door = "aws-lattice"

    def matches(self, event: Event) -> bool:
        return (
            isinstance(event, dict)
            and event.get("version") == "2.0"
            and "method" in event
            and "targetGroupArn" in _dict(event.get("requestContext"))
        )

    def method(self, event: Event) -> str:
        return str(event.get("method") or "POST")

    def to_answer(self, response: Response, event: Event) -> Any:
        return _with_status_description(super().to_answer(response, event))


class VpcLatticeV1(VpcLatticeV2):
    """VPC Lattice, event structure version 1: version 2's request and answer, with snake_case fields."""

    base64_field = "is_base64_encoded"

    def matches(self, event: Event) -> bool:
        return isinstance(event, dict) and "raw_path" in event and "method" in event

    def query(self, event: Event) -> Query:
        return _query(event.get("query_string_parameters"))


class ApplicationLoadBalancer(HttpShape):
    """An ALB target group's event, single-value or (with multi-value headers enabled) multi-value mode.

    The load balancer passes the query string as it came, URL-encoded: it is decoded here."""

    front_door = "aws-alb"

    def matches(self, event: Event) -> bool:
        return isinstance(event, dict) and "elb" in _dict(event.get("requestContext"))

    @staticmethod
    def multi_value(event: Event) -> bool:
        return "multiValueHeaders" in event

    def headers(self, event: Event) -> object:
        return event.get("multiValueHeaders" if self.multi_value(event) else "headers")

    def query(self, event: Event) -> Query:
        raw = event.get("multiValueQueryStringParameters" if self.multi_value(event) else "queryStringParameters")
        return Query(
            (unquote_plus(str(key)), [unquote_plus(str(v)) for v in (values if isinstance(values, list) else [values])])
            for key, values in _dict(raw).items()
            if values is not None
        )

    def to_answer(self, response: Response, event: Event) -> Any:
        answer = _with_status_description(super().to_answer(response, event))
        if self.multi_value(event):  # a load balancer in multi-value mode ignores "headers"
            answer["multiValueHeaders"] = {key: [value] for key, value in answer.pop("headers").items()}
        return answer


class ApiGatewayV1(HttpShape):
    """API Gateway REST API, Lambda proxy integration (payload format 1.0)."""

    def matches(self, event: Event) -> bool:
        return isinstance(event, dict) and "httpMethod" in event and "requestContext" in event


class DirectInvocation:
    """The event is the request itself: console tests, SDK/CLI invokes, non-proxy integrations. Answered with the
    plain result (or the error object: never raised, so callers get JSON either way)."""

    front_door = "aws-invoke"

    def matches(self, event: Event) -> bool:
        return True

    def to_request(self, event: Event, request_id: str | None) -> Request:
        if isinstance(event, (str, bytes)):  # a JSON document passed as a string
            try:
                event = json.loads(event)
            except ValueError:
                pass  # core answers the non-object with a clear 400 error
        return Request.invocation(event, CALLER, request_id)

    def to_answer(self, response: Response, event: Event) -> Any:
        return response.body


class EventShape(Protocol):
    """What the entry point needs of an event shape: recognise it, translate it in, translate the answer out."""

    def matches(self, event: Event) -> bool: ...

    def to_request(self, event: Event, request_id: str | None) -> Request: ...

    def to_answer(self, response: Response, event: Event) -> Any: ...


# Tried in order; the last takes whatever is left.
EVENT_SHAPES: tuple[EventShape, ...] = (
    HttpApiV2(),
    VpcLatticeV2(),
    ApplicationLoadBalancer(),
    ApiGatewayV1(),
    VpcLatticeV1(),
    DirectInvocation(),
)

# The service is made in Lambda's init phase (module import), so settings are read and validated once, before
# any request, and the model loaded and run once; a bad setting or model is logged then, and every request
# answers 500.
get_service().warm()

# SnapStart (--param="snapStart=true"): Lambda snapshots the initialised instance and restores copies of it. The
# runtime (its snapshot-restore-py, part of Lambda's Python runtime) runs these hooks around the snapshot; where
# the package is absent (invoke local, other hosts) there is no snapshot and nothing to register.
try:
    from snapshot_restore_py import register_after_restore, register_before_snapshot
except ImportError:  # pragma: no cover - depends on the environment
    pass
else:
    register_before_snapshot(lambda: get_service().warm())  # the model loaded and run once, in the snapshot
    register_after_restore(lambda: get_service().restored())  # a new instance: cold start flag, fresh sockets


S3_UPLOADS = S3Uploads()
BACKFILL = BackfillBatch()


def lambda_handler(event: Event, context: Any) -> Any:
    request_id = getattr(context, "aws_request_id", None)
    service = get_service()
    if S3_UPLOADS.matches(event):  # photos landing in the bucket: not a request, records to process
        return S3_UPLOADS.process(event, service, request_id)
    if BACKFILL.matches(event):  # a Distributed Map's batch of the bucket's keys
        return BACKFILL.process(event, service, context)
    shape = next(shape for shape in EVENT_SHAPES if shape.matches(event))
    try:
        request = shape.to_request(event, request_id)
    except BadRequest as error:  # an event field the shape cannot read (isBase64Encoded: "maybe")
        return shape.to_answer(service.refuse(Request(request_id=request_id, caller=CALLER), error), event)
    return shape.to_answer(service.handle(request), event)
