"""The three adapters, each called through its platform's real request objects, behind one signature:
call(method, body, content_type, query) -> (status, headers, parsed JSON body or None)."""
import base64
import json
from types import SimpleNamespace

import pytest

from tests.conftest import ROOT


@pytest.fixture
def fresh_service(monkeypatch):
    from core.service import get_service
    from core.settings import get_settings

    monkeypatch.setenv("FETCH_ALLOW_NETWORKS", "127.0.0.0/8")
    monkeypatch.setenv("FETCH_TOTAL_TIMEOUT", "3")
    get_settings.cache_clear()
    get_service.cache_clear()
    yield
    get_settings.cache_clear()
    get_service.cache_clear()


def _parse(text):
    return json.loads(text) if text else None


@pytest.fixture
def aws(fresh_service):
    from handlers.aws import lambda_handler

    def call(method, body, content_type, query=None):
        binary = content_type.startswith("image/")
        event = {
            "resource": "/predict", "path": "/predict", "httpMethod": method,
            "headers": {"Content-Type": content_type}, "queryStringParameters": query or None,
            "requestContext": {"resourcePath": "/predict", "httpMethod": method, "stage": "dev"},
            "body": base64.b64encode(body).decode() if binary else body.decode("utf-8", "surrogateescape"),
            "isBase64Encoded": binary,
        }
        result = lambda_handler(event, SimpleNamespace(aws_request_id="r"))
        return result["statusCode"], result["headers"], _parse(result["body"])
    return call


@pytest.fixture
def gcp(fresh_service):
    from functions_framework import create_app

    client = create_app(target="predict", source=str(ROOT / "gcp" / "main.py")).test_client()

    def call(method, body, content_type, query=None):
        response = client.open("/", method=method, data=body, content_type=content_type, query_string=query or {})
        return response.status_code, dict(response.headers), _parse(response.get_data(as_text=True))
    return call


@pytest.fixture
def azure_app():
    import importlib.util

    spec = importlib.util.spec_from_file_location("function_app", ROOT / "azure" / "function_app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


@pytest.fixture
def azure(fresh_service, azure_app):
    import azure.functions as func

    function = {f.get_function_name(): f for f in azure_app.get_functions()}["predict"]
    user_function = function.get_user_function()  # the function as the decorators registered it

    def call(method, body, content_type, query=None):
        request = func.HttpRequest(method=method, url="http://localhost:7071/api/predict", body=body,
                                   headers={"Content-Type": content_type}, params=query or {})
        response = user_function(request)
        return response.status_code, dict(response.headers), _parse(response.get_body().decode())
    return call
