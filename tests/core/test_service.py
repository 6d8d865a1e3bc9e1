"""The service end to end: real model, real HTTP fetches from loopback, every error mapped to a JSON 4xx."""

import base64
import json
import logging
import math

import pytest
from PIL import Image

from core.model import Classifier
from tests.helpers import MANIFEST, ROOT, http, image_bytes, jpeg_of

LABELS = list(Classifier(MANIFEST).load().manifest.labels)


def post(service, payload, content_type="application/json", query=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    response = service.handle(http("POST", body, content_type, query or {}))
    json.loads(response.body_text())  # always serialisable
    return response


def test_url_gives_one_score_per_label_in_manifest_order(service, image_server, pants_photo):
    base, routes = image_server
    routes["/pants.jpg"] = (200, {"Content-Type": "image/jpeg"}, pants_photo.read_bytes())
    response = post(service, {"url": base + "/pants.jpg"})
    assert response.status == 200
    assert list(response.body) == LABELS
    assert max(response.body, key=response.body.get) == "pants"
    assert response.headers["Content-Type"] == "application/json"


def test_base64_and_raw_body_agree(service, pants_photo):
    data = pants_photo.read_bytes()
    from_json = post(service, {"image": base64.b64encode(data).decode()})
    raw = post(service, data, "image/jpeg")
    assert from_json.status == raw.status == 200
    assert from_json.body == raw.body


def test_top_k_and_probabilities(service, pants_photo):
    b64 = base64.b64encode(pants_photo.read_bytes()).decode()
    top = post(service, {"image": b64, "top_k": 3, "probabilities": True}).body
    assert len(top) == 3 and list(top)[0] == "pants"
    assert list(top.values()) == sorted(top.values(), reverse=True)
    full = post(service, {"image": b64, "probabilities": True}).body
    assert math.isclose(sum(full.values()), 1.0, rel_tol=1e-5)
    raw = post(service, pants_photo.read_bytes(), "image/jpeg", {"top_k": "1"}).body
    assert list(raw) == ["pants"]
    # query options apply to JSON bodies too (the JSON fields win), and are validated for every body
    assert len(post(service, {"image": b64}, query={"top_k": "2"}).body) == 2
    assert len(post(service, {"image": b64, "top_k": 4}, query={"top_k": "2"}).body) == 4
    assert post(service, {"image": b64}, query={"top_k": "null"}).status == 400


def test_batch_keeps_order_and_reports_failures_per_item(service, image_server):
    base, routes = image_server
    routes["/t-shirt.jpg"] = (200, {"Content-Type": "image/jpeg"}, (ROOT / "samples" / "t-shirt.jpg").read_bytes())
    response = post(service, {"urls": [base + "/t-shirt.jpg", base + "/missing.jpg", "ftp://x/y"], "top_k": 1})
    assert response.status == 200
    first, missing, bad_scheme = response.body
    assert first == post(service, {"url": base + "/t-shirt.jpg", "top_k": 1}).body and len(first) == 1
    assert missing["error"]["type"] == "fetch_failed"
    assert bad_scheme["error"]["type"] == "bad_request"


@pytest.mark.parametrize(
    "payload, content_type, status, kind",
    [
        (b"{bad json", "application/json", 400, "bad_request"),
        ({"nothing": 1}, "application/json", 400, "bad_request"),
        ({"image": base64.b64encode(b"not an image").decode()}, "application/json", 422, "invalid_image"),
        (image_bytes("PNG")[:40], "image/png", 422, "invalid_image"),
        (b"<xml/>", "application/xml", 415, "unsupported_media_type"),
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "application/json", 400, "bad_request"),
    ],
)
def test_client_errors_are_json(service, payload, content_type, status, kind):
    response = post(service, payload, content_type)
    assert response.status == status
    assert response.body["error"]["type"] == kind
    assert response.body["error"]["message"]


def test_fetch_errors_map_to_502_and_504(service, image_server):
    import time

    base, routes = image_server
    routes["/boom"] = (500, {}, b"")
    routes["/slow"] = lambda handler: time.sleep(5)
    assert post(service, {"url": base + "/boom"}).status == 502
    slow = post(service, {"url": base + "/slow"})
    assert slow.status == 504 and slow.body["error"]["type"] == "fetch_timeout"


def test_methods(service):
    usage = service.handle(http("GET"))
    assert usage.status == 200 and usage.body["model"]["labels"] == LABELS
    put = service.handle(http("PUT", b"{}"))
    assert put.status == 405 and "POST" in put.headers["Allow"]
    assert put.body["error"]["type"] == "method_not_allowed"


def test_unexpected_failure_is_500_with_request_id(loopback_settings, pants_photo):
    from core.service import Service

    class Exploding(Classifier):
        def infer(self, batch):
            raise RuntimeError("secret internal detail")

    service = Service(loopback_settings, Exploding(MANIFEST))
    response = service.handle(http("POST", pants_photo.read_bytes(), "image/jpeg", request_id="req-1"))
    assert response.status == 500
    assert response.body["error"]["request_id"] == "req-1"
    assert "secret" not in response.body_text()


def test_broken_model_is_500_not_traceback(tmp_path):
    from core.service import Service
    from core.settings import Settings

    service = Service(Settings(manifest_path=tmp_path / "missing.json"))
    response = service.handle(http("POST", b'{"url": "http://example.com/a.jpg"}', "application/json"))
    assert response.status == 500 and response.body["error"]["type"] == "internal_error"


def test_cli_prints_json_for_a_local_file(pants_photo):
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "cli", str(pants_photo), "--top-k", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert list(json.loads(out.stdout))[0] == "pants"
    missing = subprocess.run(
        [sys.executable, "-m", "cli", "/no/such/file.jpg"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert missing.returncode == 1 and "cannot read" in missing.stderr


def test_the_jpeg_settings_choose_full_size_or_reduced_decodes(loopback_settings, pants_photo, caplog):
    from dataclasses import replace

    from core.service import Service

    def decoded(settings, photo: bytes) -> tuple[dict, list]:
        """The answer, and the size the photo was decoded to (from the request's log line)."""
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="core"):
            response = Service(settings).handle(http("POST", photo, "image/jpeg"))
        assert response.status == 200, response.body
        lines = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith("{")]
        return response.body, lines[-1]["image_size"]

    with Image.open(pants_photo) as img:  # 0.85 MP and 3.4 MP: under and over the 2 MP default
        small, big = (
            jpeg_of(img.resize((img.width * k, img.height * k), Image.Resampling.LANCZOS), quality=90) for k in (2, 4)
        )
    assert decoded(loopback_settings, small)[1] == [800, 1066]  # full size: Keras' pixels
    default_big, size = decoded(loopback_settings, big)
    assert size == [200, 267]  # an eighth of the size, still over the model's 192 pixels
    exact_big, size = decoded(replace(loopback_settings, jpeg_exact=True), big)
    assert size == [1600, 2132] and exact_big != default_big  # other pixels, other scores
    assert max(default_big, key=default_big.get) == max(exact_big, key=exact_big.get) == "pants"
    assert decoded(replace(loopback_settings, jpeg_draft=True), small)[1] == [200, 267]  # every JPEG
    assert decoded(replace(loopback_settings, jpeg_exact_max_pixels=4_000_000), big)[1] == [1600, 2132]


@pytest.mark.parametrize(
    "accept, page",
    [
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # a browser's navigation
        ("application/json", False),
        ("*/*", False),
        (None, False),
        ("", False),
        ("application/json, text/html;q=0.5", False),
        ("text/html;q=0.9, application/json;q=0.9", True),
        ("text/html;q=bogus", False),
    ],
)
def test_get_answers_the_page_to_browsers_and_the_usage_json_to_the_rest(service, accept, page):
    response = service.handle(http("GET", accept=accept))
    assert response.status == 200
    if page:
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        assert response.body_text().startswith("<!doctype html>")
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "unsafe" not in policy
    else:
        assert response.headers["Content-Type"] == "application/json" and "labels" in response.body["model"]


def test_the_page_loads_nothing_from_anywhere_else():
    from core.page import page

    html, _ = page()
    assert "http://" not in html.replace('placeholder="https://example.com/photo.jpg"', "")
    assert "https://" not in html.replace('placeholder="https://example.com/photo.jpg"', "")
    assert "<link" not in html and "src=" not in html.replace('id="preview"', "")
