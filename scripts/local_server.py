"""The GCP adapter on the real functions-framework server (gunicorn, threads), on a free loopback port: what the
tests and the benchmarks start (``make serve-gcp`` is the same server on port 8080, in the foreground)."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, log: Path, seconds: float = 60, up_status: int = 200) -> None:
    """Until GET answers ``up_status`` (a server started with a bad setting answers 500 once it is up)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited: " + log.read_text()[-3000:])
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == up_status:
                    return
        except urllib.error.HTTPError as error:
            if error.code == up_status:
                return
            time.sleep(0.2)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {seconds}s")


class ServerProcess(subprocess.Popen):
    log_path: Path  # the server's output


def start_functions_framework(
    python_bin_dir: Path,
    source: Path,
    cwd: Path,
    extra_env: dict[str, str] | None = None,
    up_status: int = 200,
    target: str = "predict",
) -> tuple[ServerProcess, str]:
    """The server on a free port: (process, URL); its output goes to the file ``process.log_path``."""
    port = free_port()
    env = {**os.environ, "FETCH_ALLOW_NETWORKS": "127.0.0.0/8", "PYTHONPATH": str(cwd), **(extra_env or {})}
    # The server logs a line per request: into a file, since an unread pipe would fill up and block it.
    log = Path(tempfile.mkstemp(prefix="functions-framework-", suffix=".log")[1])
    with open(log, "w") as out:
        proc = ServerProcess(
            [
                str(python_bin_dir / "functions-framework"),
                "--source",
                str(source),
                "--target",
                target,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    proc.log_path = log
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until_up(url, proc, log, up_status=up_status)
    except RuntimeError:
        proc.kill()
        raise
    return proc, url


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # gunicorn waits for in-flight requests; the test is over
        proc.kill()
        proc.wait(timeout=10)
