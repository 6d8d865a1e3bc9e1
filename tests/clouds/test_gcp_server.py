"""The real functions-framework server (gunicorn, threads) on a loopback port, with concurrent requests."""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, http_post


def wait_until_up(url: str, proc, log: Path, seconds=60, up_status=200):
    """Until GET answers ``up_status`` (a server started with a bad setting answers 500 once it is up)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("server exited: " + log.read_text()[-3000:])
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
    raise AssertionError(f"{url} did not come up in {seconds}s")


class ServerProcess(subprocess.Popen):
    log_path: Path  # the server's output


def start_functions_framework(python_bin_dir: Path, source: Path, cwd: Path, extra_env=None, up_status=200):
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
                "predict",
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
    except AssertionError:
        proc.kill()
        raise
    return proc, url


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:  # gunicorn waits for in-flight requests; the test is over
        proc.kill()
        proc.wait(timeout=10)


post = http_post


@pytest.fixture(scope="module")
def server():
    proc, url = start_functions_framework(Path(sys.executable).parent, ROOT / "gcp" / "main.py", ROOT)
    yield url
    stop_server(proc)


def test_url_and_errors_over_real_http(server, image_server, pants_photo):
    base, routes = image_server
    routes["/gcp-pants.jpg"] = (200, {"Content-Type": "image/jpeg"}, pants_photo.read_bytes())
    status, body = post(server, json.dumps({"url": base + "/gcp-pants.jpg"}).encode())
    assert status == 200 and max(body, key=body.get) == "pants"
    status, body = post(server, b"{broken", "application/json")
    assert status == 400 and body["error"]["type"] == "bad_request"
    status, body = post(server, pants_photo.read_bytes(), "image/jpeg")
    assert status == 200 and max(body, key=body.get) == "pants"


def test_32_concurrent_requests_are_all_correct(server, dataset):
    """Threads share one process: each must get its own interpreter and its own image's answer."""
    photos = [(label, sorted((dataset / "validation" / label).glob("*.jpg"))[:4]) for label in ("pants", "shoes")]
    jobs = [p for _, ps in photos for p in ps] * 4  # 32 requests
    single = {p: post(server, p.read_bytes(), "image/jpeg")[1] for p in set(jobs)}  # answers one at a time
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(lambda p: post(server, p.read_bytes(), "image/jpeg"), jobs))
    elapsed = time.perf_counter() - started
    print(f"\n32 concurrent requests in {elapsed:.2f}s: {len(jobs) / elapsed:.0f} requests/s")
    for path, (status, body) in zip(jobs, answers, strict=False):
        assert status == 200
        assert body == single[path]  # identical scores: no interpreter shared between threads
