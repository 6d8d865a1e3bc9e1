import json
from pathlib import Path

import pytest

EVENTS = Path(__file__).resolve().parent.parent / "events"


@pytest.fixture
def event():
    """Load a sample event from tests/events/ by name."""
    return lambda name: json.loads((EVENTS / name).read_text())
