"""gcp-storage-emulator on loopback, and a Cloud Storage client's bucket on it, for the storage trigger's and the
backfill's tests."""

import pytest

from scripts.local_server import free_port

BUCKET = "clothing-uploads-example"


@pytest.fixture(scope="module")
def emulator():
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="module")
def bucket(emulator):
    from google.cloud import storage

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STORAGE_EMULATOR_HOST", emulator)
        yield storage.Client().bucket(BUCKET)
