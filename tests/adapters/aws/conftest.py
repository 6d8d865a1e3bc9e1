import json
import urllib.request

import pytest

from tests.helpers import ROOT

EVENTS = ROOT / "tests" / "events"


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
    endpoint = f"http://127.0.0.1:{port}"
    # moto keeps its accounts in the process, not in the server: without a reset, a module would meet the buckets
    # and stacks an earlier module on the same test worker left (S3 bucket names are global: BucketAlreadyExists)
    urllib.request.urlopen(urllib.request.Request(endpoint + "/moto-api/reset", method="POST"), timeout=30).close()
    yield endpoint
    server.stop()


@pytest.fixture(scope="session")
def backfill_definition():
    """The backfill's state machine definition as `serverless print` resolves it for a bucket (infra/backfill.yml
    through serverless.yml)."""
    from tests.serverless import require_cli, run_serverless

    params = ["--param=bucket=shop-photos-backfill", "--param=backfill=true"]
    proc = run_serverless([require_cli(), "print", "--format", "json", *params], timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resources = json.loads(proc.stdout)["resources"]["Resources"]
    return resources["BackfillStateMachine"]["Properties"]["Definition"]


@pytest.fixture(scope="module")
def sls():
    """The project's serverless CLI (osls), installed by npm ci."""
    from tests.serverless import require_cli

    return require_cli()


@pytest.fixture(scope="module")
def packages(sls):
    """{name: the folder `serverless package` wrote} for each configuration of sls_packages.py, built once."""
    from tests.adapters.aws import sls_packages

    return sls_packages.packages(sls)
