"""Photos landing in Azure Blob Storage: the registered `classify_upload` blob trigger, with Azurite (Microsoft's
storage emulator, npm) on loopback. No Functions host can run here (no package ships it), so the test does its
part, from the bindings the function registered: each new blob under the trigger's path is read from Azurite with
the blob client and handed over as the host hands it (`azure.functions.InputStream`, named container/key), and
what the function sets on its output binding is written to that binding's path."""

from __future__ import annotations

import json

import pytest

from tests.adapters.azure.azure_worker import load
from tests.helpers import ROOT

PANTS = (ROOT / "samples" / "pants.jpg").read_bytes()


@pytest.fixture(scope="module")
def container(azurite):
    """The `photos` container on a fresh in-memory Azurite."""
    return azurite.service.create_container("photos")


@pytest.fixture(scope="module")
def function(fresh_service_module):
    """classify_upload as the Functions worker indexes and calls it."""
    return load(ROOT / "azure")["classify_upload"]


@pytest.fixture(scope="module")
def fresh_service_module():
    from core.service import get_service

    get_service.cache_clear()
    yield
    get_service.cache_clear()


class Out:
    """What the host gives an output binding: the value the function sets."""

    def __init__(self):
        self.value = None

    def set(self, value):
        self.value = value

    def get(self):
        return self.value


def run_host(function, container) -> dict[str, str]:
    """The host's part for every blob under the trigger's path: {blob name: result blob name written}."""
    import azure.functions as func

    bindings = {b.type: b for b in function.declared.get_bindings()}
    trigger, output = bindings["blobTrigger"].path, bindings["blob"].path
    assert trigger.startswith("photos/") and trigger.endswith("{name}")
    prefix = trigger.removeprefix("photos/").removesuffix("{name}")
    written = {}
    for blob in container.list_blobs(name_starts_with=prefix):
        data = container.download_blob(blob.name).readall()
        stream = func.blob.InputStream(data=data, name=f"photos/{blob.name}", length=blob.size)
        out = Out()
        function.call(photo=stream, result=out)
        if out.value is not None:
            target = output.removeprefix("photos/").replace("{name}", blob.name.removeprefix(prefix))
            container.upload_blob(target, out.value, overwrite=True)
            written[blob.name] = target
    return written


def test_uploads_get_the_apis_answers_and_results_are_never_classified(function, container):
    container.upload_blob("uploads/summer pants été.jpg", PANTS)
    container.upload_blob("uploads/fake.jpg", b"not an image")
    container.upload_blob("uploads/notes.txt", b"hello")
    written = run_host(function, container)
    assert written == {
        "uploads/summer pants été.jpg": "results/uploads/summer pants été.jpg.json",
        "uploads/fake.jpg": "results/uploads/fake.jpg.json",
    }  # notes.txt: skipped, no result
    pants = json.loads(container.download_blob("results/uploads/summer pants été.jpg.json").readall())
    assert pants["key"] == "uploads/summer pants été.jpg" and pants["status"] == 200
    assert pants["answer"]["label"] == "pants"
    fake = json.loads(container.download_blob("results/uploads/fake.jpg.json").readall())
    assert fake["status"] == 422 and fake["answer"]["error"]["type"] == "invalid_image"
    # the results are outside the trigger's path, and the code would skip them anyway
    assert not run_host(function, container).keys() - written.keys()
    assert not any(b.name.startswith("results/results/") for b in container.list_blobs())


def test_the_services_own_failure_raises_so_the_host_retries(monkeypatch):
    """A 5xx from the service (here a bad setting: every request 500) is not the blob's result: the function raises
    (the host retries, then the poison queue) and sets no output."""
    import azure.functions as func

    from core.service import get_service
    from core.storage import RetryLater

    monkeypatch.setenv("MAX_BATCH", "many")
    get_service.cache_clear()
    try:
        function = load(ROOT / "azure")["classify_upload"]
        out = Out()
        stream = func.blob.InputStream(data=PANTS, name="photos/uploads/pants.jpg", length=len(PANTS))
        with pytest.raises(RetryLater, match="500"):
            function.call(photo=stream, result=out)
        assert out.value is None
    finally:
        get_service.cache_clear()


def test_a_result_name_past_blob_storages_limit_is_never_asked_for(function):
    import azure.functions as func

    name = "uploads/" + "a" * 1008 + ".jpg"  # a valid blob name (1,020 characters); its result's would be 1,033
    out = Out()
    function.call(photo=func.blob.InputStream(data=PANTS, name=f"photos/{name}", length=len(PANTS)), result=out)
    assert out.value is None
