"""`serverless package` for the AWS tests: each configuration the tests read, packaged (~60 s of CPU with the
requirements, ~10 s without) once for every test process that reads it, whichever test file asks first, each from
its own copy of the service (the requirements plugin keeps its work in the service's .serverless folder).

The packages are kept in the system's temporary folder under a digest of what `serverless package` reads from the
repository (the service's files, the npm lock that pins the CLI and its plugins, the parameters, which packages
carry the requirements, the environment variables the configuration reads) and of the Python and Node.js versions,
and each is built under a file lock: the suite's worker processes, and `make check`'s checkov run after them, share
one build instead of making their own. A change to any of those is a new digest. Not in it: pip's choice of
unpinned transitive wheels, fixed for the length of a cache (six hours unused)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from filelock import FileLock

from tests.helpers import ROOT
from tests.serverless import SERVICE, copy_service, run_serverless, sls_env

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
# The packages whose zip the tests open (what the function runs). The others are read for their templates alone,
# so they are packaged without the requirements: the same template but for the code's hash, in 10 s instead of 60
# (the requirements plugin compresses the ~100 MB of wheels at zlib level 9 in JavaScript).
WITH_REQUIREMENTS = {"rest", "py311"}

CACHE = Path(tempfile.gettempdir()) / "clothing-classifier-sls-packages"
STALE_AFTER_S = 6 * 3600  # other digests' packages untouched this long are removed
_built: dict[str, Path] = {}


def package(sls: str, out: Path, *params: str, cwd: Path = ROOT) -> Path:
    proc = run_serverless([sls, "package", "--package", str(out), *params], timeout=900, cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # No configuration warnings (Framework v3 warned about python3.12 on every run).
    assert "Warning" not in proc.stdout + proc.stderr and "Invalid configuration" not in proc.stdout + proc.stderr
    return out


def inputs_digest() -> str:
    """sha256 of what `serverless package` reads for the configurations of PACKAGES."""
    digest = hashlib.sha256(json.dumps([PACKAGES, sorted(WITH_REQUIREMENTS)], sort_keys=True).encode())
    for entry in (*SERVICE, "package-lock.json"):
        path = ROOT / entry
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for file in files:
            if file.is_file() and not {"runs", "__pycache__"} & set(file.relative_to(ROOT).parts):  # as copy_service
                digest.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes())
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
    digest.update(f"python {sys.version} node {node}".encode())
    configuration = "".join(path.read_text() for path in [ROOT / "serverless.yml", *sorted(ROOT.glob("infra/*.yml"))])
    env = sls_env()
    for name in sorted(set(re.findall(r"\$\{env:(\w+)", configuration))):
        digest.update(f"{name}={env.get(name, '')}".encode())
    return digest.hexdigest()[:20]


def _remove_stale(keep: Path) -> None:
    """Other digests' packages unused for STALE_AFTER_S (each run touches its folder); another process may be
    removing the same ones."""
    os.utime(keep)
    for other in CACHE.iterdir():
        try:
            if other != keep and other.is_dir() and time.time() - other.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(other, ignore_errors=True)
        except OSError:
            continue


def packages(sls: str, names: tuple[str, ...] = tuple(PACKAGES)) -> dict[str, Path]:
    """{name in names: the folder `serverless package` wrote}, built on the first call unless another process
    has built it from the same inputs."""
    if not set(names) <= set(_built):
        root = CACHE / inputs_digest()
        root.mkdir(parents=True, exist_ok=True)
        _remove_stale(root)

        def build(name: str) -> tuple[str, Path]:
            out = root / name
            with FileLock(root / f"{name}.lock"):
                if not out.is_dir():  # renamed into place only when whole
                    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))
                    try:
                        service = copy_service(work / "service")
                        if name not in WITH_REQUIREMENTS:
                            (service / "requirements.txt").write_text("")
                        package(sls, work / "out", *PACKAGES[name], cwd=service)
                        # osls names the REST API's Deployment after the millisecond its CLI started: packages
                        # built at once can share that name, and the second of two such stacks deployed one
                        # after the other would create no new Deployment. A package whose name is taken is
                        # built again (under a lock every process takes, so that no two renames race).
                        with FileLock(root / "deployments.lock"):
                            while (taken := deployment_id(work / "out")) and taken in deployment_ids(root):
                                shutil.rmtree(work / "out")
                                package(sls, work / "out", *PACKAGES[name], cwd=service)
                            (work / "out").rename(out)
                    finally:
                        shutil.rmtree(work, ignore_errors=True)
            return name, out

        with ThreadPoolExecutor(max_workers=len(names)) as pool:
            _built.update(pool.map(build, names))
    return {name: _built[name] for name in names}


def deployment_id(out: Path) -> str | None:
    """The logical id of the package's API Gateway Deployment (REST APIs only), or None."""
    resources = template_resources(out)
    return next((key for key, r in resources.items() if r["Type"] == "AWS::ApiGateway::Deployment"), None)


def deployment_ids(root: Path) -> set[str]:
    """The Deployment ids of the finished packages under ``root`` (each renamed into its own folder)."""
    finished = [out for out in root.iterdir() if (out / "cloudformation-template-update-stack.json").is_file()]
    return {i for i in map(deployment_id, finished) if i}


def template(out: Path) -> dict[str, Any]:
    return json.loads((out / "cloudformation-template-update-stack.json").read_text())


def template_resources(out: Path) -> dict[str, Any]:
    return template(out)["Resources"]


def of_type(resources: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in resources.values() if r["Type"] == kind]
