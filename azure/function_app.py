"""Azure Functions entry point (Python v2 programming model): ``POST /api/predict``.

Function-level keys by default (``?code=...`` or ``x-functions-key``); every method reaches the function,
so GET answers usage and other methods a JSON 405, as on the other clouds.
"""

import azure.functions as func

from core import get_service
from core.http import Headers, Request

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

# The service is made when the Functions host indexes this module (the instance's start), so settings are read
# and validated once and the model loaded and run once, before any request; a bad setting or model is logged
# then, and every request answers 500.
get_service().warm()


@app.function_name(name="predict")
@app.route(route="predict", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def predict(req: func.HttpRequest, context: func.Context | None = None) -> func.HttpResponse:
    # The host passes `context` by name; its invocation id is the one Application Insights shows.
    response = get_service().handle(
        Request(
            method=req.method,
            headers=Headers(req.headers.items()),
            query=dict(req.params),
            body=req.get_body(),
            request_id=getattr(context, "invocation_id", None),
            caller="azure",
            front_door="azure",
        )
    )
    return func.HttpResponse(body=response.body_text(), status_code=response.status, headers=response.headers)
