"""One structured JSON log line per request: ids, timings, status, cold start; never image data."""

import base64
import json
import logging

from core.service import Service
from tests.helpers import http


def records(caplog):
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "core" and r.getMessage().startswith("{")]


def test_one_json_line_per_request_with_timings(loopback_settings, image_server, pants_photo, caplog):
    base, routes = image_server
    routes["/log-pants.jpg"] = (200, {"Content-Type": "image/jpeg"}, pants_photo.read_bytes())
    service = Service(loopback_settings)
    with caplog.at_level(logging.INFO, logger="core"):
        service.handle(
            http(
                "POST", json.dumps({"url": base + "/log-pants.jpg"}), "application/json", caller="gcp", request_id="r-1"
            )
        )
        service.handle(http("POST", b"{bad", "application/json", caller="gcp", request_id="r-2"))
    first, second = records(caplog)
    assert first["request_id"] == "r-1" and first["caller"] == "gcp" and first["input"] == "url"
    assert first["status"] == 200 and first["cold_start"] is True
    assert set(first["ms"]) == {"fetch", "decode", "preprocess", "inference", "verdict"}
    assert first["verdicts"] == {"clothing": 1} and 0 < first["clothing_distance"] < 2  # asked for or not
    assert first["image_bytes"] == len(pants_photo.read_bytes()) and len(first["image_size"]) == 2
    assert second["status"] == 400 and second["error"] == "bad_request" and second["cold_start"] is False


def test_log_never_holds_image_data(loopback_settings, pants_photo, caplog):
    b64 = base64.b64encode(pants_photo.read_bytes()).decode()
    with caplog.at_level(logging.INFO, logger="core"):
        Service(loopback_settings).handle(http("POST", json.dumps({"image": b64}), "application/json"))
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert b64[:40] not in text and len(text) < 1000


def test_every_answer_has_a_request_id_and_a_log_line_with_its_severity(loopback_settings, caplog):
    """GET, OPTIONS and 405 go through the same exit as predictions."""
    service = Service(loopback_settings)
    with caplog.at_level(logging.INFO, logger="core"):
        answers = [
            service.handle(http(method, b"", "application/json", request_id=f"id-{method}"))
            for method in ("GET", "OPTIONS", "DELETE")
        ]
        service.handle(http("POST", b"{bad", "application/json", request_id="id-bad"))
    assert [a.headers["X-Request-Id"] for a in answers] == ["id-GET", "id-OPTIONS", "id-DELETE"]
    lines = records(caplog)
    assert [(r["method"], r["status"], r["severity"]) for r in lines] == [
        ("GET", 200, "INFO"),
        ("OPTIONS", 204, "INFO"),
        ("DELETE", 405, "WARNING"),
        ("POST", 400, "WARNING"),
    ]
    assert [r.levelname for r in caplog.records if r.getMessage().startswith("{")] == [
        "INFO",
        "INFO",
        "WARNING",
        "WARNING",
    ]
