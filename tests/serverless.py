"""The project's serverless CLI (osls, installed by `npm ci` as node_modules/.bin/serverless) for the tests: its
environment, and `serverless offline start` as a context manager."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from scripts.local_server import free_port
from tests.helpers import ROOT

SLS = ROOT / "node_modules" / ".bin" / "serverless"


def sls_env(**extra) -> dict:
    """What `source .venv/bin/activate` gives a user: invoke local and offline run this virtualenv's python3."""
    env = dict(
        os.environ,
        SLS_TELEMETRY_DISABLED="1",
        SLS_NOTIFICATIONS_MODE="off",
        PYTHON_BIN=sys.executable,
        VIRTUAL_ENV=str(Path(sys.executable).parent.parent),
        **extra,
    )
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def run_serverless(command: list[str], timeout: int, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """One serverless CLI command, run as a user runs it from the repository root; its output captured as text."""
    return subprocess.run(command, cwd=cwd, env=sls_env(), capture_output=True, text=True, timeout=timeout)


# What a service directory holds for `serverless package` or `deploy` (the rest of the repository is not needed).
SERVICE = ("serverless.yml", "package.json", "requirements.txt", "core", "handlers", "model", "plugins", "infra")


def copy_service(service: Path) -> Path:
    """A copy of the service in its own folder: the requirements plugin keeps its work in the service's .serverless
    folder, so commands run at once each need one."""
    service.mkdir(parents=True)
    for entry in SERVICE:
        source = ROOT / entry
        if source.is_dir():
            shutil.copytree(source, service / entry, ignore=shutil.ignore_patterns("runs", "__pycache__"))
        else:
            shutil.copy2(source, service / entry)
    (service / "node_modules").symlink_to(ROOT / "node_modules")
    return service


def require_cli() -> str:
    if not SLS.exists():
        raise AssertionError("node_modules/.bin/serverless is missing: run `make install` (npm ci)")
    return str(SLS)


@contextlib.contextmanager
def offline_server(*params: str, **env):
    """`serverless offline start` on free ports; yields the base URL (http://127.0.0.1:PORT/dev)."""
    http_port, lambda_port = free_port(), free_port()
    proc = subprocess.Popen(
        [require_cli(), "offline", "start", "--httpPort", str(http_port), "--lambdaPort", str(lambda_port), *params],
        cwd=ROOT,
        env=sls_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    stdout = proc.stdout
    assert stdout is not None  # stdout=PIPE
    output, deadline, line = [], time.monotonic() + 120, ""
    while time.monotonic() < deadline:
        line = stdout.readline()
        output.append(line)
        if "Server ready" in line or (not line and proc.poll() is not None):
            break
    if "Server ready" not in line:
        os.killpg(proc.pid, 9)
        raise AssertionError("serverless offline did not start:\n" + "".join(output)[-3000:])
    # keep reading: an unread pipe fills up with the function's log lines and blocks the server
    threading.Thread(target=lambda: [None for _ in stdout], daemon=True).start()
    try:
        yield f"http://127.0.0.1:{http_port}/dev", "".join(output)
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
