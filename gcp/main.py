"""Google Cloud Functions (gen2) entry points on functions-framework: ``predict``, the HTTP function, and
``classify_upload``, a CloudEvent function for photos landing in Cloud Storage (rules: core/storage.py).

Locally: ``functions-framework --source gcp/main.py --target predict`` (with the repository on PYTHONPATH),
or from the bundle (``make bundle-gcp``): ``cd dist/gcp && functions-framework --target predict``.
"""

from typing import Any

import flask
import functions_framework
from cloudevents.http import CloudEvent
from gcs_bucket import GcsBucket  # beside this file (functions-framework puts its folder on the path)

from core import get_service
from core.contract import Headers, Query, Request, Response
from core.errors import NotFound
from core.storage import process_upload

CALLER = "gcp"

# The service is made when functions-framework loads this module (the instance's start), so settings are read
# and validated once and the model loaded and run once, before any request; a bad setting or model is logged
# then, and every request answers 500.
get_service().warm()


@functions_framework.http
def predict(request: flask.Request) -> flask.Response:
    service = get_service()
    limit = service.settings.max_body_bytes
    declared = request.content_length
    # A body over the limit is refused by its Content-Length, unread; one without a length is read only up to
    # one byte past the limit (the service then answers 413), never whole.
    body = b"" if declared is not None and declared > limit else request.stream.read(limit + 1)
    response = service.handle(
        Request(
            method=request.method,
            headers=Headers(request.headers.items()),
            query=Query(request.args.lists()),  # every value: a repeated parameter is refused, as on every door
            body=body,
            request_id=_execution_id(request),
            caller=CALLER,
            front_door="gcp",
            declared_length=declared,
        )
    )
    if (declared or len(body)) > limit:
        return _refused_unread(response)
    return _flask_response(response)


@functions_framework.errorhandler(404)
def not_found(error: Exception) -> flask.Response:
    """functions-framework answers /favicon.ico and /robots.txt itself with an HTML 404: JSON, as everywhere."""
    request = flask.request
    message = f"nothing at {request.path[:200]}; this function answers at its own URL (GET: usage, POST: classify)"
    refused = Request(
        method=request.method,
        headers=Headers(request.headers.items()),
        request_id=_execution_id(request),
        caller=CALLER,
    )  # its headers: a page on an allowed site reads this 404 too (CORS), as every other answer
    response = get_service().refuse(refused, NotFound(message))
    return _flask_response(response)


def _execution_id(request: flask.Request) -> str | None:
    return request.headers.get("Function-Execution-Id")  # the platform's id of this execution


def _refused_unread(response: Response) -> flask.Response:
    """The 413 for a body left unread. functions-framework reads the whole request into memory after every answer
    that is not streamed (a 500 MB body peaked at 1.24 GB); a streamed answer skips that. gunicorn discards what
    is left of the body in small chunks, never holding it."""
    return flask.Response(iter([response.body_text()]), response.status, response.headers)


def _flask_response(response: Response) -> flask.Response:
    answer = flask.Response(response.body_text(), response.status, response.headers)
    if "Content-Type" not in response.headers:  # a 204 has no body, so no type (Flask would say text/html)
        del answer.headers["Content-Type"]
    return answer


@functions_framework.cloud_event
def classify_upload(cloud_event: CloudEvent) -> None:
    """``google.cloud.storage.object.v1.finalized``: the new object under the uploads prefix is classified and its
    result written under the results prefix, as on AWS (core/storage.py). A Cloud Storage failure or the service's
    own 5xx raises (functions-framework answers 500), so the trigger's retries (``--retry``) run."""
    from google.cloud import storage  # imported on the first upload: the HTTP function never pays for it

    data: dict[str, Any] = cloud_event.data or {}
    bucket = GcsBucket(lambda: storage.Client().bucket(data["bucket"]))
    process_upload(bucket, str(data.get("name", "")), get_service(), cloud_event["id"])
