"""Azurite (Microsoft's storage emulator, npm) on loopback, fresh and in memory for each test module."""

from __future__ import annotations

import subprocess
import time
from types import SimpleNamespace

import pytest

from scripts.local_server import free_port
from tests.helpers import ROOT

AZURITE = ROOT / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (documented by Microsoft; it guards nothing)
ACCOUNT, KEY = (
    "devstoreaccount1",
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
)


@pytest.fixture(scope="module")
def azurite():
    """A running Azurite: ``.connection`` (a connection string) and ``.service`` (a BlobServiceClient)."""
    if not AZURITE.exists():
        pytest.fail("node_modules/.bin/azurite-blob is missing: `make install` installs it (npm ci)")
    from azure.storage.blob import BlobServiceClient

    port = free_port()
    proc = subprocess.Popen(
        [str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence"]
        + ["--skipApiVersionCheck", "--disableTelemetry", "--silent"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    connection = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )
    service = BlobServiceClient.from_connection_string(connection, retry_total=0)  # we wait for it ourselves
    deadline = time.monotonic() + 30
    while True:
        try:
            service.get_service_properties()
            break
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise
            time.sleep(0.2)
    yield SimpleNamespace(connection=connection, service=service)
    proc.terminate()
    proc.wait(timeout=10)
