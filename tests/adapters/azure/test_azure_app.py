"""The Azure function as registered on the FunctionApp: its trigger binding, and requests through it."""

import json


def test_registered_http_trigger(azure_app):
    functions = {f.get_function_name(): f for f in azure_app.get_functions()}
    assert set(functions) == {"predict", "classify_upload"}  # the HTTP API, and the blob trigger (storage)
    bindings = {b["type"]: b for b in json.loads(functions["predict"].get_function_json())["bindings"]}
    trigger = bindings["httpTrigger"]
    assert trigger["route"] == "predict"
    assert "post" in [m.lower() for m in trigger["methods"]]
    assert "head" in [m.lower() for m in trigger["methods"]]  # else the host refuses HEAD before the function runs
    assert trigger["authLevel"].lower() == "function"  # keys by default
    assert bindings["http"]["direction"].lower() == "out"
    blob = {b["type"]: b for b in json.loads(functions["classify_upload"].get_function_json())["bindings"]}
    assert blob["blobTrigger"]["path"] == "photos/uploads/{name}"
    assert blob["blob"]["path"] == "photos/results/uploads/{name}.json" and blob["blob"]["direction"].lower() == "out"
    assert blob["blobTrigger"]["connection"] == blob["blob"]["connection"] == "AzureWebJobsStorage"
    assert blob["blobTrigger"]["source"] == "EventGrid"  # the only blob trigger Flex Consumption runs


def test_the_polling_blob_trigger_for_a_local_run(monkeypatch):
    """STORAGE_BLOB_TRIGGER=polling (azure/local.settings.example.json): Azurite sends no Event Grid events."""
    import importlib.util

    from core.service import get_service
    from tests.helpers import ROOT

    monkeypatch.setenv("STORAGE_BLOB_TRIGGER", "polling")
    get_service.cache_clear()
    spec = importlib.util.spec_from_file_location("function_app_polling", ROOT / "azure" / "function_app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    get_service.cache_clear()
    functions = {f.get_function_name(): f for f in module.app.get_functions()}
    bindings = json.loads(functions["classify_upload"].get_function_json())["bindings"]
    assert next(b for b in bindings if b["type"] == "blobTrigger")["source"] == "LogsAndContainerScan"
    settings = json.loads((ROOT / "azure" / "local.settings.example.json").read_text())["Values"]
    assert settings["STORAGE_BLOB_TRIGGER"] == "polling" and settings["AzureWebJobsStorage"]


def test_raw_image_and_query_options(azure, pants_photo):
    status, headers, body = azure("POST", pants_photo.read_bytes(), "image/jpeg", {"top_k": "1"})
    assert status == 200 and list(body) == ["pants"]


def test_head_answers_like_get(azure):
    """GET's status and headers (the host sends no body for HEAD)."""
    status, headers, _ = azure("HEAD", b"", "application/json")
    assert status == 200 and headers["Content-Type"].startswith("application/json")


def test_options_answers_allow(azure):
    status, headers, body = azure("OPTIONS", b"", "application/json")
    assert status == 204 and "POST" in headers.get("Allow", headers.get("allow", "")) and body is None


def test_the_worker_loads_every_function(azure_functions):
    """The Python worker's own indexing accepts each function (it refuses, with FunctionLoadError, a `context`
    annotated anything but azure.functions.Context) and passes predict its invocation context."""
    assert set(azure_functions) == {"predict", "classify_upload"}
    assert azure_functions["predict"].info.requires_context and list(azure_functions["predict"].info.input_types) == [
        "req"
    ]
    assert list(azure_functions["classify_upload"].info.output_types) == ["result"]


def test_platform_request_ids_are_used(azure_functions):
    """Azure's invocation id (from the function's context) and functions-framework's Function-Execution-Id
    become the X-Request-Id and the log's request id."""
    import azure.functions as func

    request = func.HttpRequest(method="GET", url="http://localhost:7071/api/predict", body=b"", headers={})
    response = azure_functions["predict"].call(invocation_id="7c2e-azure-invocation", req=request)
    assert response.headers["X-Request-Id"] == "7c2e-azure-invocation"

    from functions_framework import create_app

    from tests.helpers import ROOT

    client = create_app(target="predict", source=str(ROOT / "gcp" / "main.py")).test_client()
    response = client.get("/", headers={"Function-Execution-Id": "gcp-exec-42", "X-Cloud-Trace-Context": "trace/1;o=1"})
    assert response.headers["X-Request-Id"] == "gcp-exec-42"
