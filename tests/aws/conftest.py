import json
from pathlib import Path

import pytest

EVENTS = Path(__file__).resolve().parent.parent / "events"


@pytest.fixture
def event():
    """Load a sample event from tests/events/ by name."""
    return lambda name: json.loads((EVENTS / name).read_text())


@pytest.fixture
def handler(monkeypatch):
    """handlers.aws.lambda_handler over a fresh service whose settings allow the loopback image server."""
    from core.service import get_service
    from core.settings import get_settings

    monkeypatch.setenv("FETCH_ALLOW_NETWORKS", "127.0.0.0/8")
    monkeypatch.setenv("FETCH_TOTAL_TIMEOUT", "3")
    get_settings.cache_clear()
    get_service.cache_clear()
    from handlers.aws import lambda_handler
    yield lambda_handler
    get_settings.cache_clear()
    get_service.cache_clear()
