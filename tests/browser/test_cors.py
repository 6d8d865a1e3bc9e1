"""CORS in a real browser: a page on one loopback origin calls the API on another (the real functions-framework
server, CORS_ALLOW_ORIGINS naming the first page's origin). Chromium sends the preflight and enforces the answer:
the allowed page reads the answer, errors and X-Request-Id included; a page on a third origin is refused."""

from __future__ import annotations

import base64
import http.server
import json
import threading

import pytest

from tests.helpers import ROOT

FETCH = """async ([api, body]) => {
    try {
        const response = await fetch(api, {method: "POST", headers: {"Content-Type": "application/json"}, body});
        return {status: response.status, body: await response.json(), requestId: response.headers.get("X-Request-Id")};
    } catch (error) {
        return {refused: String(error)};
    }
}"""


class BlankPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<!doctype html><title>another site</title>")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def origins():
    """Two web sites on loopback: (allowed origin, other origin)."""
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), BlankPage) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield tuple(f"http://127.0.0.1:{server.server_address[1]}" for server in servers)
    for server in servers:
        server.shutdown()


@pytest.fixture(scope="module")
def api(gcp_server, origins):
    return gcp_server(CORS_ALLOW_ORIGINS=origins[0])[0]


def call_from(browser, origin: str, api: str, body: str) -> dict:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(origin + "/")
        return page.evaluate(FETCH, [api, body])
    finally:
        context.close()


IMAGE = json.dumps({"image": base64.b64encode((ROOT / "samples" / "pants.jpg").read_bytes()).decode(), "top_k": 1})


def test_the_allowed_site_reads_answers_errors_and_the_request_id(browser, origins, api):
    answer = call_from(browser, origins[0], api, IMAGE)
    assert answer.get("status") == 200, answer
    assert list(answer["body"]) == ["pants"] and answer["requestId"]  # X-Request-Id is exposed to the script
    error = call_from(browser, origins[0], api, "{nope")
    assert error.get("status") == 400 and error["body"]["error"]["type"] == "bad_request", error


def test_another_site_is_refused_by_the_browser(browser, origins, api):
    answer = call_from(browser, origins[1], api, IMAGE)  # the same request the allowed site's answer came to
    assert "refused" in answer and "Failed to fetch" in answer["refused"], answer
