"""Azure Functions entry points (Python v2 programming model): ``POST /api/predict``, and ``classify_upload``,
a blob trigger for photos landing in the ``photos`` container under ``uploads/`` (rules: core/storage.py).

Function-level keys by default (``?code=...`` or ``x-functions-key``); every method reaches the function,
so GET answers usage and other methods a JSON 405, as on the other clouds.
"""

import logging

import azure.functions as func

from core import get_service
from core.contract import Headers, Query, Request
from core.storage import StoredObject, process_upload

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
            query=Query(req.params),  # the host joins a repeated parameter's values with commas: never valid
            body=req.get_body(),
            request_id=context.invocation_id,
            caller="azure",
            front_door="azure",
        )
    )
    return func.HttpResponse(body=response.body_text(), status_code=response.status, headers=response.headers)


# Bindings are fixed when the host indexes the app (at start, with the app's settings as environment): the
# container, the service's own prefixes (STORAGE_UPLOADS_PREFIX, STORAGE_RESULTS_PREFIX) and the trigger's source
# (STORAGE_BLOB_TRIGGER), read once here.
CONTAINER = "photos"
UPLOADS = get_service().settings.storage_uploads_prefix
RESULTS = get_service().settings.storage_results_prefix
CONNECTION = "AzureWebJobsStorage"
SOURCE = {"eventgrid": func.BlobSource.EVENT_GRID, "polling": func.BlobSource.LOGS_AND_CONTAINER_SCAN}[
    get_service().settings.storage_blob_trigger
]


@app.function_name(name="classify_upload")
@app.blob_trigger(arg_name="photo", path=f"{CONTAINER}/{UPLOADS}{{name}}", connection=CONNECTION, source=SOURCE)
@app.blob_output(arg_name="result", path=f"{CONTAINER}/{RESULTS}{UPLOADS}{{name}}.json", connection=CONNECTION)
def classify_upload(photo: func.InputStream, result: func.Out[str]) -> None:
    """A new blob under photos/uploads/: its result, the API's answer, goes to photos/results/uploads/<name>.json
    (the output binding; core/storage.py). A storage failure or the service's own 5xx raises, so the host retries
    (five times, then the blob's name goes to the webjobs-blobtrigger-poison queue). The host hands over the blob
    as it is now."""
    key = (photo.name or "").split("/", 1)[-1]  # the host names it container/key
    process_upload(BoundBlobs(photo, result), key, get_service())


class BoundBlobs:
    """core.storage's ObjectStore on the trigger's bindings: the blob that fired it, and the one result blob the
    output binding names (``results/<key>.json``); a result that must go elsewhere (a key too long for that name)
    cannot be written through the binding, and is logged instead."""

    caller = "azure-blob"

    def __init__(self, photo: func.InputStream, result: func.Out[str]) -> None:
        self.photo, self.result = photo, result

    def open(self, key: str) -> StoredObject | None:
        properties = (
            getattr(self.photo, "blob_properties", None) or {}
        )  # the trigger's metadata, where the host sends it
        return StoredObject(
            key,
            self.photo.length,
            self.photo.read,
            version=str(properties.get("ETag") or properties.get("Etag") or "").strip('"') or None,  # as listed
            encoding=properties.get("ContentEncoding"),
        )

    def write(self, name: str, body: bytes) -> None:
        key = (self.photo.name or "").split("/", 1)[-1]
        if name != f"{RESULTS}{key}.json":
            logging.getLogger("core").error("no result for %r: its result blob's name would be too long", key[:200])
            return
        self.result.set(body.decode())

    def superseded(self, stored: StoredObject) -> bool:
        return False  # the host hands over the blob as it is when the function runs; bindings cannot ask again
