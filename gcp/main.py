"""Google Cloud Functions (gen2) entry point: ``predict``, an HTTP function on functions-framework.

Locally: ``functions-framework --source gcp/main.py --target predict`` (with the repository on PYTHONPATH),
or from the bundle (``make bundle-gcp``): ``cd dist/gcp && functions-framework --target predict``.
"""

import flask
import functions_framework

from core import get_service


@functions_framework.http
def predict(request: flask.Request) -> tuple[str, int, dict[str, str]]:
    # The platform's id of this execution (the trace id would span many requests).
    response = get_service().handle_http(
        request.method,
        request.get_data(cache=False),
        request.headers.get("Content-Type"),
        request.args.to_dict(),
        cloud="gcp",
        request_id=request.headers.get("Function-Execution-Id"),
        accept=request.headers.get("Accept"),
        front_door="gcp",
    )
    return response.body_text(), response.status, response.headers
