"""Azure Functions entry points (Python v2 programming model): ``POST /api/predict``, and ``classify_upload``,
a blob trigger for photos landing in the ``photos`` container under ``uploads/`` (rules: core/storage.py).

Function-level keys by default (``?code=...`` or ``x-functions-key``); every method reaches the function,
so GET answers usage and other methods a JSON 405, as on the other clouds.
"""

import json
import logging

import azure.functions as func

from core import get_service
from core.http import Headers, Request
from core.storage import MAX_KEY_BYTES, StoredPhoto, classify_object, too_large, why_skipped

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

# The service is made when the Functions host indexes this module (the instance's start), so settings are read
# and validated once and the model loaded and run once, before any request; a bad setting or model is logged
# then, and every request answers 500.
get_service().warm()


@app.function_name(name="predict")
@app.route(route="predict", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def predict(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    # The host passes `context` by name; its invocation id is the one Application Insights shows. The worker refuses
    # to load the function unless the annotation is exactly func.Context (no Optional, no default).
    response = get_service().handle(
        Request(
            method=req.method,
            headers=Headers(req.headers.items()),
            query=dict(req.params),
            body=req.get_body(),
            request_id=context.invocation_id,
            caller="azure",
            front_door="azure",
        )
    )
    return func.HttpResponse(body=response.body_text(), status_code=response.status, headers=response.headers)


# Binding paths are fixed when the host indexes the app: the container, then the default prefixes of
# core/settings.py (STORAGE_UPLOADS_PREFIX, STORAGE_RESULTS_PREFIX), which this function therefore keeps.
CONTAINER = "photos"


@app.function_name(name="classify_upload")
@app.blob_trigger(arg_name="photo", path=CONTAINER + "/uploads/{name}", connection="AzureWebJobsStorage")
@app.blob_output(arg_name="result", path=CONTAINER + "/results/uploads/{name}.json", connection="AzureWebJobsStorage")
def classify_upload(photo: func.InputStream, result: func.Out[str]) -> None:
    """A new blob under photos/uploads/: its result, the API's answer, goes to photos/results/uploads/<name>.json
    (the output binding). A blob that cannot be classified gets an error result; a storage failure or the
    service's own 5xx raises, so the host retries (five times, then the blob's name goes to the
    webjobs-blobtrigger-poison queue). The host hands over the blob as it is now."""
    service = get_service()
    key = (photo.name or "").split("/", 1)[-1]  # the host names it container/key
    reason = why_skipped(key, service)
    if reason:  # the trigger watches uploads/ only; kept as on the other clouds
        return
    if len(f"results/{key}.json") > MAX_KEY_BYTES:  # the binding's fixed name would pass Blob Storage's limit
        logging.getLogger("core").error("no result for %r: its result blob's name would be too long", key[:200])
        return
    outcome = too_large(StoredPhoto(key, photo.length), service) or classify_object(
        service, key, photo.read(), None, "azure-blob"
    )
    result.set(json.dumps(outcome))
