"""Malformed and oversized requests on all three adapters: 4xx JSON with the right type, identical everywhere."""

import json

import pytest

CASES = {
    "body over MAX_BODY_BYTES": (b'{"image": "' + b"A" * 5000 + b'"}', "application/json", 413, "payload_too_large"),
    "raw image over MAX_IMAGE_BYTES": (b"\xff\xd8" + b"\x00" * 3000, "image/jpeg", 413, "payload_too_large"),
    "deeply nested JSON": (b"[" * 1900 + b"]" * 1900, "application/json", 400, "bad_request"),
    "deeply nested object": (b'{"a":' * 600 + b"1" + b"}" * 600, "application/json", 400, "bad_request"),
    "non-UTF-8 body": ('{"url": "caf\u00e9"}'.encode("latin-1"), "application/json", 400, "bad_request"),
    "JSON array": (b'["http://example.com/a.jpg"]', "application/json", 400, "bad_request"),
    "JSON string": (b'"http://example.com/a.jpg"', "application/json", 400, "bad_request"),
    "JSON null": (b"null", "application/json", 400, "bad_request"),
    "empty body": (b"", "application/json", 400, "bad_request"),
    "neither url nor image": (b'{"top_k": 3}', "application/json", 400, "bad_request"),
    "both url and image": (b'{"url": "http://x/y", "image": "aGk="}', "application/json", 400, "bad_request"),
    "url is a number": (b'{"url": 42}', "application/json", 400, "bad_request"),
    "url is a list": (b'{"url": ["http://x/y"]}', "application/json", 400, "bad_request"),
    "image is an object": (b'{"image": {"data": "aGk="}}', "application/json", 400, "bad_request"),
    "empty batch": (b'{"urls": []}', "application/json", 400, "bad_request"),
    "oversized batch": (json.dumps({"images": ["aGk="] * 17}).encode(), "application/json", 400, "bad_request"),
    "top_k huge": (b'{"url": "http://x/y", "top_k": 1000000}', "application/json", 400, "bad_request"),
    "top_k negative": (b'{"url": "http://x/y", "top_k": -1}', "application/json", 400, "bad_request"),
    "top_k float": (b'{"url": "http://x/y", "top_k": 2.5}', "application/json", 400, "bad_request"),
    "top_k string": (b'{"url": "http://x/y", "top_k": "3"}', "application/json", 400, "bad_request"),
    "too many digits for int()": (b'{"top_k": ' + b"9" * 4000 + b"}", "application/json", 400, "bad_request"),
    "probabilities string": (b'{"url": "http://x/y", "probabilities": "yes"}', "application/json", 400, "bad_request"),
    "huge number": (b'{"url": "http://x/y", "top_k": 1' + b"0" * 3000 + b"}", "application/json", 400, "bad_request"),
    "javascript url": (b'{"url": "javascript:alert(1)"}', "application/json", 400, "bad_request"),
    "gopher url": (b'{"url": "gopher://127.0.0.1:6379/_FLUSHALL"}', "application/json", 400, "bad_request"),
    "multipart form": (b"--x\r\n\r\n--x--", "multipart/form-data; boundary=x", 415, "unsupported_media_type"),
}


@pytest.fixture
def small_limits(monkeypatch):
    monkeypatch.setenv("MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("MAX_IMAGE_BYTES", "2048")


@pytest.mark.parametrize("name", list(CASES))
def test_bad_request_gets_the_same_4xx_json_everywhere(small_limits, aws, gcp, azure, name):
    body, content_type, status, kind = CASES[name]
    answers = [call("POST", body, content_type) for call in (aws, gcp, azure)]
    for got_status, _, got_body in answers:
        assert got_status == status, (name, got_body)
        assert got_body["error"]["type"] == kind
    assert answers[0][2] == answers[1][2] == answers[2][2]
