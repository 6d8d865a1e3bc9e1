"""CORS in a real browser: a page on one loopback origin calls the API on another (the real functions-framework
server, CORS_ALLOW_ORIGINS naming the first page's origin). Chromium sends the preflight and enforces the answer:
the allowed page reads the answer, errors and X-Request-Id included; a page on a third origin is refused."""

from __future__ import annotations

import base64
import json

import pytest

from tests.helpers import ROOT, QuietHandler, serve_on_loopback

FETCH = """async ([api, body]) => {
    try {
        const response = await fetch(api, {method: "POST", headers: {"Content-Type": "application/json"}, body});
        return {status: response.status, body: await response.json(), requestId: response.headers.get("X-Request-Id")};
    } catch (error) {
        return {refused: String(error)};
    }
}"""


class BlankPage(QuietHandler):
    def do_GET(self):
        self.reply(200, b"<!doctype html><title>another site</title>", {"Content-Type": "text/html"})


@pytest.fixture(scope="module")
def origins():
    """Two web sites on loopback: (allowed origin, other origin)."""
    sites = [serve_on_loopback(BlankPage) for _ in range(2)]
    yield tuple(url for _, url in sites)
    for server, _ in sites:
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
