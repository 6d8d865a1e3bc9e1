"""Google Cloud Functions (gen2) entry point: ``predict``, an HTTP function on functions-framework.

Locally: ``functions-framework --source gcp/main.py --target predict`` (with the repository on PYTHONPATH),
or from the bundle (``make bundle-gcp``): ``cd dist/gcp && functions-framework --target predict``.
"""
import functions_framework

from core import get_service


@functions_framework.http
def predict(request):
    # Cloud Run's trace header carries the request's id: "TRACE_ID/SPAN_ID;o=1".
    trace = request.headers.get("X-Cloud-Trace-Context", "")
    response = get_service().handle_http(
        request.method, request.get_data(cache=False), request.headers.get("Content-Type"),
        request.args.to_dict(), cloud="gcp", request_id=trace.split("/", 1)[0] or None)
    return ("" if response.body is None else response.json()), response.status, response.headers
