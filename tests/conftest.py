"""Shared fixtures: the dataset in ../shared, a loopback HTTP server for image URLs, services with test settings,
and the three cloud adapters behind one signature, each called through its platform's real request objects:
call(method, body, content_type, query, headers) -> (status, headers, parsed JSON body or None)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.helpers import DATA, MANIFEST, ROOT, QuietHandler, photo_views, serve_on_loopback


@pytest.fixture(scope="session")
def gcp_server():
    """The GCP adapter on the real functions-framework server, one per distinct environment for the whole session
    (each start costs seconds): ``gcp_server(**env) -> (url, process)``."""
    import sys

    from scripts.local_server import start_functions_framework, stop_server

    started: dict[tuple, tuple] = {}

    def server(**env: str):
        key = tuple(sorted(env.items()))
        if key not in started:
            started[key] = start_functions_framework(
                Path(sys.executable).parent, ROOT / "gcp" / "main.py", ROOT, env or None
            )
        proc, url = started[key]
        return url, proc

    yield server
    for proc, _ in started.values():
        stop_server(proc)


@pytest.fixture(scope="session")
def dataset() -> Path:
    if not (DATA / "validation").is_dir():
        pytest.skip(f"the clothing dataset is absent ({DATA}); it lives in ../shared beside the repository")
    return DATA


@pytest.fixture(scope="session")
def labelled_photos(tmp_path_factory) -> Path:
    """A folder per label, pants/ and t-shirt/, each 60 JPEGs made from the photo in samples/ (photo_views): real
    photos of known labels for the bulk, concurrency and soak tests, on any clone."""
    root = tmp_path_factory.mktemp("labelled")
    for label in ("pants", "t-shirt"):
        (root / label).mkdir()
        for i, view in enumerate(photo_views(ROOT / "samples" / f"{label}.jpg", 60)):
            view.save(root / label / f"{label}-{i:02d}.jpg", quality=90)
    return root


@pytest.fixture(scope="session")
def pants_photo() -> Path:
    """A validation photo of pants, shipped in samples/ (the same file), so tests that need a photo run on a
    fresh clone without ../shared; only tests of the dataset itself (accuracy, training) skip there."""
    return ROOT / "samples" / "pants.jpg"


class Routes(dict):
    """path -> (status, headers, body) or a callable(handler) for custom behaviour."""


@pytest.fixture(scope="session")
def image_server():
    """A real HTTP server on 127.0.0.1 whose routes tests fill in; yields (base_url, routes)."""
    routes = Routes()

    class Handler(QuietHandler):
        def do_GET(self):
            route = routes.get(self.path.split("?")[0])
            if route is None:
                self.send_error(404)
                return
            if callable(route):
                route(self)
                return
            status, headers, body = route
            self.reply(status, body, headers)

    server, base = serve_on_loopback(Handler)
    yield base, routes
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def loopback_settings():
    """Settings that let URLs reach the loopback test server (everything else stays refused)."""
    import ipaddress

    from core.settings import Settings

    return Settings(
        manifest_path=MANIFEST,
        fetch_allow_networks=(ipaddress.ip_network("127.0.0.0/8"),),
        fetch_connect_timeout=2.0,
        fetch_total_timeout=3.0,
    )


@pytest.fixture(scope="session")
def service(loopback_settings):
    from core.service import Service

    return Service(loopback_settings)


@pytest.fixture
def fresh_service(monkeypatch):
    from core.service import get_service

    monkeypatch.setenv("FETCH_ALLOW_NETWORKS", "127.0.0.0/8")
    monkeypatch.setenv("FETCH_TOTAL_TIMEOUT", "3")
    get_service.cache_clear()
    yield
    get_service.cache_clear()


def _parse(text):
    return json.loads(text) if text else None


@pytest.fixture
def handler(fresh_service):
    """handlers.aws.lambda_handler over a fresh service whose settings allow the loopback image server."""
    from handlers.aws import lambda_handler

    return lambda_handler


@pytest.fixture
def aws(fresh_service):
    from handlers.aws import lambda_handler

    def call(method, body, content_type, query=None, headers=None):
        binary = content_type.startswith("image/")
        event = {
            "resource": "/predict",
            "path": "/predict",
            "httpMethod": method,
            "headers": {"Content-Type": content_type, **(headers or {})},
            "queryStringParameters": query or None,
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

    def call(method, body, content_type, query=None, headers=None):
        response = client.open(
            "/", method=method, data=body, content_type=content_type, query_string=query or {}, headers=headers
        )
        return response.status_code, dict(response.headers), _parse(response.get_data(as_text=True))

    return call


@pytest.fixture
def azure_app():
    import importlib.util

    spec = importlib.util.spec_from_file_location("function_app", ROOT / "azure" / "function_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


@pytest.fixture
def azure_functions(fresh_service):
    """The app's functions as the Functions worker indexes and calls them: {name: WorkerFunction}."""
    from tests.adapters.azure.azure_worker import load

    return load(ROOT / "azure")


@pytest.fixture
def azure(azure_functions):
    import azure.functions as func

    def call(method, body, content_type, query=None, headers=None):
        request = func.HttpRequest(
            method=method,
            url="http://localhost:7071/api/predict",
            body=body,
            headers={"Content-Type": content_type, **(headers or {})},
            params=query or {},
        )
        response = azure_functions["predict"].call(req=request)
        return response.status_code, dict(response.headers), _parse(response.get_body().decode())

    return call
