"""`serverless package` for the AWS tests: each configuration the tests read, packaged once per test process
(each ~30-100 s) whichever test file asks first, all at once, each from its own copy of the service (the
requirements plugin keeps its work in the service's .serverless folder)."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tests.helpers import ROOT
from tests.serverless import copy_service, run_serverless

# rest: the defaults. The others carry non-default options, to show that each reaches the template (url: the
# backfill's state machine too); rest, py311 and existing are deployed one after the other against moto
# (test_deploy_moto.py).
PACKAGES = {
    "rest": (),
    "http": (
        "--param=api=http",
        "--param=rateLimit=5",
        "--param=burstLimit=10",
        "--param=snapStart=true",
        "--param=logRetentionDays=14",
    ),
    "url": (
        "--param=api=url-iam",
        "--param=maxConcurrency=3",
        "--param=tracing=true",
        "--param=bucket=clothing-backfill-example",
        "--param=backfill=true",
    ),
    "py311": (
        "--param=python=3.11",
        "--param=bucket=clothing-uploads-example",
        "--param=rateLimit=7",
        "--param=burstLimit=9",
        "--param=keepVersions=1",
    ),
    # the same bucket, kept by the removed py311 stack, used as it is
    "existing": ("--param=bucket=clothing-uploads-example", "--param=bucketExists=true"),
}

_built: dict[str, Path] = {}


def package(sls: str, out: Path, *params: str, cwd: Path = ROOT) -> Path:
    proc = run_serverless([sls, "package", "--package", str(out), *params], timeout=900, cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # No configuration warnings (Framework v3 warned about python3.12 on every run).
    assert "Warning" not in proc.stdout + proc.stderr and "Invalid configuration" not in proc.stdout + proc.stderr
    return out


def packages(sls: str) -> dict[str, Path]:
    """{name in PACKAGES: the folder `serverless package` wrote}, built on the first call."""
    if not _built:
        root = Path(tempfile.mkdtemp(prefix="sls-packages-"))
        atexit.register(shutil.rmtree, root, True)

        def build(name: str) -> tuple[str, Path]:
            service = copy_service(root / name / "service")
            return name, package(sls, root / name / "out", *PACKAGES[name], cwd=service)

        with ThreadPoolExecutor(max_workers=len(PACKAGES)) as pool:
            _built.update(pool.map(build, PACKAGES))
    return _built


def template(out: Path) -> dict[str, Any]:
    return json.loads((out / "cloudformation-template-update-stack.json").read_text())


def template_resources(out: Path) -> dict[str, Any]:
    return template(out)["Resources"]


def of_type(resources: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in resources.values() if r["Type"] == kind]
