"""The HTTP contract's details: caches key on Accept and never sniff, HEAD answers like GET, the framework's own
paths answer JSON, impossible host names are a 400, an empty image is a 422. Against the real functions-framework
server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.helpers import invocation


@pytest.fixture(scope="module")
def server(gcp_server):
    return gcp_server()[0]


def call(url, method="GET", body=None, headers=None):
    """(status, headers, body bytes)."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_answers_vary_on_accept_and_json_is_never_sniffed(server):
    for accept in ("application/json", "text/html"):
        status, headers, _ = call(server, headers={"Accept": accept})
        assert status == 200 and "Accept" in headers["Vary"]
    status, headers, _ = call(server, "POST", b"{}", {"Content-Type": "application/json"})
    assert status == 400 and headers["X-Content-Type-Options"] == "nosniff" and "Accept" in headers["Vary"]
    status, headers, body = call(server, "OPTIONS")
    assert status == 204 and body == b"" and "Content-Type" not in headers  # was labelled text/html
    assert "HEAD" in headers["Allow"]


def test_head_answers_like_get_without_a_body(server):
    status, headers, body = call(server, "HEAD", headers={"Accept": "application/json"})
    assert status == 200 and headers["Content-Type"].startswith("application/json") and body == b""
    status, headers, body = call(server, "HEAD", headers={"Accept": "text/html"})
    assert status == 200 and headers["Content-Type"].startswith("text/html") and body == b""


@pytest.mark.parametrize("path", ["/favicon.ico", "/robots.txt"])
def test_the_frameworks_own_paths_answer_json_404_with_a_request_id(server, path):
    status, headers, body = call(server.rstrip("/") + path)
    assert status == 404 and headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["error"]["type"] == "not_found" and headers["X-Request-Id"]


@pytest.mark.parametrize(
    "host", ["exa mple.com", "-x-.test", "a..b", "x_-.example", "bad-.example", "a" * 64 + ".test"]
)
def test_host_names_that_can_never_resolve_are_400_not_502(fresh_service, host):
    from core.service import get_service

    answer = get_service().handle(invocation({"url": f"http://{host}/x.jpg"}))
    assert answer.status == 400 and "not a valid host name" in answer.body["error"]["message"], answer.body


def test_real_host_names_pass_the_check():
    from core.addresses import valid_host as _valid_host

    for host in ("example.com", "a-b.example.co.uk", "xn--bcher-kva.example", "bücher.example", "_dmarc.x.com"):
        assert _valid_host(host), host
    assert _valid_host("127.0.0.1") and _valid_host("::1")


@pytest.mark.parametrize(
    "body, content_type",
    [(b"", "image/jpeg"), (b'{"image": ""}', "application/json"), (b'{"image": "data:image/png;base64,"}', None)],
    ids=["raw", "base64", "data url"],
)
def test_an_empty_image_is_422_as_documented(server, body, content_type):
    status, _, answer = call(server, "POST", body, {"Content-Type": content_type or "application/json"})
    error = json.loads(answer)["error"]
    assert status == 422 and error["type"] == "invalid_image" and "empty" in error["message"]
