"""Shared fixtures: the dataset in ../shared, a loopback HTTP server for image URLs, services with test settings."""
from __future__ import annotations

import http.server
import io
import socket
import threading
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "clothing-dataset-small"
MANIFEST = ROOT / "model" / "clothing-model.json"


@pytest.fixture(scope="session")
def dataset() -> Path:
    if not (DATA / "validation").is_dir():
        pytest.skip(f"the clothing dataset is absent ({DATA}); it lives in ../shared beside the repository")
    return DATA


@pytest.fixture(scope="session")
def pants_photo(dataset) -> Path:
    return sorted((dataset / "validation" / "pants").glob("*.jpg"))[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def image_bytes(fmt="PNG", size=(64, 48), mode="RGB", color=(200, 30, 30), **save) -> bytes:
    img = Image.new(mode, size, color if mode in ("RGB", "RGBA", "CMYK") else 128)
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


class Routes(dict):
    """path -> (status, headers, body) or a callable(handler) for custom behaviour."""


@pytest.fixture(scope="session")
def image_server():
    """A real HTTP server on 127.0.0.1 whose routes tests fill in; yields (base_url, routes)."""
    routes = Routes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            route = routes.get(self.path.split("?")[0])
            if route is None:
                self.send_error(404)
                return
            if callable(route):
                route(self)
                return
            status, headers, body = route
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", routes
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def loopback_settings():
    """Settings that let URLs reach the loopback test server (everything else stays refused)."""
    import ipaddress

    from core.settings import Settings

    return Settings(manifest_path=MANIFEST, fetch_allow_networks=(ipaddress.ip_network("127.0.0.0/8"),),
                    fetch_connect_timeout=2.0, fetch_total_timeout=3.0)


@pytest.fixture(scope="session")
def service(loopback_settings):
    from core.service import Service

    return Service(loopback_settings)
