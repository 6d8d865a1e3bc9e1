"""Faults and load on the real functions-framework server, loopback only, bounded in count and time."""

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.helpers import http_post as post

TOTAL_TIMEOUT = 2.0
SOAK_REQUESTS = int(os.environ.get("SOAK_REQUESTS", "2000"))


@pytest.fixture(scope="module")
def server(gcp_server):
    return gcp_server(FETCH_TOTAL_TIMEOUT=str(TOTAL_TIMEOUT), FETCH_CONNECT_TIMEOUT="1", FETCH_MAX_REDIRECTS="3")


def rss_kb(pid: int) -> int:
    """Resident memory of the server and its children (gunicorn's worker), from /proc."""
    total = 0
    for candidate in [pid] + [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]:
        for line in Path(f"/proc/{candidate}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


@pytest.fixture(scope="module")
def faulty_routes(image_server, pants_photo):
    base, routes = image_server

    def hang(handler):
        time.sleep(TOTAL_TIMEOUT + 3)

    def forever(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.end_headers()
        try:
            for _ in range(10_000):  # bounded "forever": 10 s at most
                handler.wfile.write(b"\xff" * 1024)
                handler.wfile.flush()
                time.sleep(0.001)
        except (BrokenPipeError, ConnectionResetError):
            pass

    routes["/fault/hang"] = hang
    routes["/fault/forever"] = forever
    routes["/fault/500"] = (500, {"Content-Type": "text/plain"}, b"internal error")
    routes["/fault/loop"] = (302, {"Location": "/fault/loop"}, b"")
    routes["/fault/html"] = (200, {"Content-Type": "text/html"}, b"<html>not an image</html>")
    routes["/fault/ok.jpg"] = (200, {"Content-Type": "image/jpeg"}, pants_photo.read_bytes())
    return base


@pytest.mark.parametrize(
    "path, status, kind",
    [
        ("/fault/hang", 504, "fetch_timeout"),
        ("/fault/forever", 413, "payload_too_large"),  # the byte cap (10 MiB) or the deadline, whichever first
        ("/fault/500", 502, "fetch_failed"),
        ("/fault/loop", 502, "fetch_failed"),
        ("/fault/html", 415, "unsupported_media_type"),
    ],
)
def test_fault_ends_in_time_with_the_right_error_and_the_server_keeps_serving(
    server, faulty_routes, path, status, kind
):
    url, _ = server
    started = time.monotonic()
    got_status, body = post(url, json.dumps({"url": faulty_routes + path}).encode())
    elapsed = time.monotonic() - started
    if path == "/fault/forever" and got_status == 504:
        kind, status = "fetch_timeout", 504
    assert (got_status, body["error"]["type"]) == (status, kind), body
    assert elapsed < TOTAL_TIMEOUT + 2.0
    ok_status, ok = post(url, json.dumps({"url": faulty_routes + "/fault/ok.jpg"}).encode())
    assert ok_status == 200 and max(ok, key=ok.get) == "pants"


def test_soak_concurrent_clients(server, labelled_photos):
    """A few thousand requests from 8 concurrent clients: zero failures, memory stable."""
    url, proc = server
    photos = [p.read_bytes() for label in ("pants", "t-shirt") for p in sorted((labelled_photos / label).glob("*"))[:4]]
    for data in photos:  # warm every thread's interpreter before the first memory reading
        post(url, data, "image/jpeg")
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: post(url, photos[i % len(photos)], "image/jpeg"), range(64)))
    start_rss = rss_kb(proc.pid)
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda i: post(url, photos[i % len(photos)], "image/jpeg")[0], range(SOAK_REQUESTS)))
    elapsed = time.perf_counter() - started
    end_rss = rss_kb(proc.pid)
    print(
        f"\nsoak: {SOAK_REQUESTS} requests in {elapsed:.1f}s ({SOAK_REQUESTS / elapsed:.0f}/s), "
        f"RSS {start_rss / 1024:.1f} MB -> {end_rss / 1024:.1f} MB"
    )
    assert statuses.count(200) == SOAK_REQUESTS
    assert end_rss - start_rss < 30 * 1024  # no leak: less than 30 MB growth over the soak
