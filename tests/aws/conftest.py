import json
from pathlib import Path

import pytest

EVENTS = Path(__file__).resolve().parent.parent / "events"


@pytest.fixture
def event():
    """Load a sample event from tests/events/ by name."""
    return lambda name: json.loads((EVENTS / name).read_text())


@pytest.fixture(scope="module")
def moto_endpoint():
    """moto's server on a loopback port (S3, CloudFormation, Lambda, API Gateway... as real HTTP APIs)."""
    from moto.server import ThreadedMotoServer

    from scripts.local_server import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
