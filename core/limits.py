"""What each platform's front door lets through, from the providers' documentation, and the largest image that
fits in a request through it (raw, and as base64 in JSON).

The platform refuses an oversized request before the function runs, with its own error (Lambda: a 413 or 500
without our JSON), so clients must size their requests by these numbers: the page and the bulk command do, and
GET's usage JSON tells them the numbers for the front door they came through. Within them, the service's own
limits (MAX_BODY_BYTES, MAX_IMAGE_BYTES: docs/configuration.md) apply and answer a clear 413.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024
# Lambda's synchronous invocation payload: "6 MB", enforced as "Request must be smaller than 6291456 bytes".
LAMBDA_PAYLOAD = 6 * MiB
# What a Lambda event carries besides the body: request context, headers (cookies included), query. Measured
# events are 1-3 KB; the margin is for long headers.
EVENT_OVERHEAD = 64 * 1024
# A JSON request's bytes besides the base64 string: {"image": "...", "top_k": 5, "probabilities": true}.
JSON_OVERHEAD = 1024


@dataclass(frozen=True)
class FrontDoor:
    key: str  # as the adapters name it
    name: str  # as the table in docs/limits.md names it
    max_request_bytes: int  # the request body the front door itself accepts (its documented limit)
    # The body travels inside a Lambda event (whose JSON must fit LAMBDA_PAYLOAD); binary bodies (image/*) are
    # base64-encoded in it, JSON bodies are not.
    in_lambda_event: bool
    source: str  # where the provider documents the limit
    raw_bodies: bool = True  # False: the request is JSON only (a direct invocation's event is the JSON)

    @property
    def max_body_bytes(self) -> int:
        """The largest request body that reaches the function (GET's ``max_request_bytes``): the front door's
        limit and, through a Lambda, what fits in the invocation payload once the door wraps it in its event (a
        JSON body as its text; a raw body is base64-encoded, ``max_raw_image_bytes``)."""
        if not self.in_lambda_event:
            return self.max_request_bytes
        return min(self.max_request_bytes, LAMBDA_PAYLOAD - EVENT_OVERHEAD)

    @property
    def max_raw_image_bytes(self) -> int | None:
        """The largest image sent as the request body itself (Content-Type: image/*); None where there is none."""
        if not self.raw_bodies:
            return None
        if not self.in_lambda_event:
            return self.max_request_bytes
        return min(self.max_request_bytes, (LAMBDA_PAYLOAD - EVENT_OVERHEAD) // 4 * 3)  # base64: 4 bytes per 3

    @property
    def max_json_image_bytes(self) -> int:
        """The largest image sent as base64 in a JSON body ({"image": ...}): base64 is 4 bytes for every 3."""
        return (self.max_body_bytes - JSON_OVERHEAD) // 4 * 3


FRONT_DOORS = {
    door.key: door
    for door in (
        FrontDoor(
            "aws-rest",
            "AWS API Gateway REST API → Lambda",
            10 * MiB,
            True,
            "API Gateway quotas (10 MB payload); Lambda quotas (6 MB synchronous invocation payload)",
        ),
        FrontDoor(
            "aws-http",
            "AWS API Gateway HTTP API → Lambda",
            10 * MiB,
            True,
            "API Gateway quotas (10 MB payload); Lambda quotas (6 MB synchronous invocation payload)",
        ),
        FrontDoor(
            "aws-url",
            "AWS Lambda Function URL",
            LAMBDA_PAYLOAD,
            True,
            "Lambda quotas (6 MB synchronous invocation payload; Function URLs invoke in BUFFERED mode)",
        ),
        FrontDoor(
            "aws-alb",
            "AWS Application Load Balancer → Lambda",
            1 * MiB,
            True,
            "Elastic Load Balancing, Lambda functions as targets (1 MB request body)",
        ),
        FrontDoor(
            "aws-lattice",
            "AWS VPC Lattice → Lambda",
            LAMBDA_PAYLOAD,
            True,
            "VPC Lattice, Lambda functions as targets (6 MB request body)",
        ),
        FrontDoor(
            "aws-invoke",
            "AWS Lambda direct invocation (SDK, CLI, console)",
            LAMBDA_PAYLOAD,
            True,
            "Lambda quotas (6 MB synchronous invocation payload)",
            raw_bodies=False,
        ),
        FrontDoor(
            "gcp",
            "Google Cloud Functions (2nd gen)",
            32 * MiB,
            False,
            "Cloud Run functions quotas (32 MB HTTP request, 2nd gen; 1st gen: 10 MB)",
        ),
        FrontDoor(
            "azure",
            "Azure Functions (HTTP trigger)",
            100 * MiB,
            False,
            "Azure Functions HTTP trigger limits (100 MB request length, 4 KB URL)",
        ),
    )
}

# The smallest of them all: a client that does not know where it sends (the page before GET answers, the bulk
# command against an endpoint that does not say) keeps every request within it.
SMALLEST = min(FRONT_DOORS.values(), key=lambda door: door.max_json_image_bytes)
