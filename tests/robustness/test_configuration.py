"""A bad setting at start-up: one log line naming the variable and what it accepts, then a JSON 500 (with a
request id) for every request, on the real functions-framework server and through the Lambda handler."""

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from scripts.local_server import start_functions_framework, stop_server
from tests.helpers import ROOT


def test_bad_configuration_is_one_start_up_line_then_a_json_500_for_every_request():
    proc, url = start_functions_framework(
        Path(sys.executable).parent, ROOT / "gcp" / "main.py", ROOT, {"FETCH_TOTAL_TIMEOUT": "nan"}, up_status=500
    )
    log = proc.log_path
    try:
        for method in ("GET", "POST", "OPTIONS"):
            request = urllib.request.Request(
                url,
                data=b"{}" if method == "POST" else None,
                method=method,
                headers={"Content-Type": "application/json"},
            )
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(request, timeout=30)
            body = json.loads(answer.value.read())
            assert answer.value.code == 500 and body["error"]["type"] == "internal_error", method
            assert body["error"]["request_id"]
    finally:
        stop_server(proc)
    lines = [line for line in log.read_text().splitlines() if "configuration error, every request" in line]
    assert len(lines) == 1 and "FETCH_TOTAL_TIMEOUT=nan" in lines[0] and "finite number > 0" in lines[0]
    assert "Traceback" not in log.read_text()


@pytest.mark.parametrize(
    "variable, value, accepts",
    [
        ("FETCH_TOTAL_TIMEOUT", "nan", "finite number > 0"),
        ("FETCH_TOTAL_TIMEOUT", "-1", "finite number > 0"),
        ("FETCH_CONNECT_TIMEOUT", "0", "finite number > 0"),
        ("MAX_IMAGE_PIXELS", "-1", "integer >= 1"),
        ("MAX_BATCH", "0", "integer >= 1"),
        ("MODEL_THREADS", "0", "integer >= 1"),
        ("LOG_LEVEL", "verbose", "one of DEBUG, INFO"),
        ("JPEG_DRAFT", "ture", "1/true/yes/on or 0/false/no/off"),
    ],
)
def test_every_setting_is_validated_at_start_up(monkeypatch, fresh_service, caplog, variable, value, accepts):
    from core.service import get_service
    from handlers.aws import lambda_handler  # its first import made a service already: an init with another env

    monkeypatch.setenv(variable, value)
    get_service.cache_clear()  # a fresh init, with this environment
    with caplog.at_level("ERROR", logger="core"):
        get_service()
    assert any(variable in r.getMessage() and accepts in r.getMessage() for r in caplog.records), caplog.text
    usage = lambda_handler({"version": "2.0", "requestContext": {"http": {"method": "GET"}}}, None)
    assert usage["statusCode"] == 500 and json.loads(usage["body"])["error"]["type"] == "internal_error"
