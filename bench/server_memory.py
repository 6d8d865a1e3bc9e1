"""Benchmark 8: the memory of a real functions-framework server (8 threads, as `--concurrency 8` runs it) fed
36-megapixel photos: RSS after start, after 20 sequential requests and after 20 more from 8 clients at once,
and the peak. The GCP deploy (docs/deploy/gcp.md) gives an instance 1 GiB; the goal is to stay under 700 MB. Then the
attacks, each on a fresh server: 16 clients of 40 MP PNGs at once (with a 12 MP phone photo's
latency meanwhile), eight 30 MB bodies at once, one 500 MB body, four 16 MiB JSON bodies of empty objects at
once, four batches of 16 URLs of ~10 MiB photos at once.

    python -m bench.run server_memory
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from bench.common import ROOT, VENV_PY, WORK, publish


def big_photo(fmt: str, side: int = 6000):
    """A 6000x6000 photo-like image (smooth gradients, fine noise) under the 10 MiB upload limit."""
    import numpy as np
    from PIL import Image

    path = WORK / f"big-{side}.{fmt.lower()}"
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
        rng = np.random.default_rng(0)
        pixels = np.stack([x * 200 + 20, y * 180 + 30, (x + y) * 90 + 40], axis=-1)
        if fmt == "JPEG":  # PNG keeps the smooth image: with noise it would be far over the limit
            pixels += rng.normal(0, 6, pixels.shape)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, fmt, quality=80, optimize=True)
    return path


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    status = open(f"/proc/{pid}/status").read()
    return int(status.split(field + ":")[1].split()[0]) / 1024


def post(url: str, body: bytes, content_type: str) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def serve(extra_env: dict):
    from scripts.local_server import start_functions_framework

    env = {"THREADS": "8", "LOG_LEVEL": "WARNING", **extra_env}
    return start_functions_framework(VENV_PY.parent, ROOT / "gcp" / "main.py", ROOT, env)


def worker_pid(server_pid: int) -> int:
    """gunicorn's one worker process (it serves the requests); the server itself if it has none."""
    children = open(f"/proc/{server_pid}/task/{server_pid}/children").read().split()
    return int(children[0]) if children else server_pid


def measure(photo, content_type: str, requests: int, extra_env: dict) -> dict:
    proc, url = serve(extra_env)
    try:
        pid = worker_pid(proc.pid)
        body = photo.read_bytes()
        started_mb = rss_mb(pid)
        t = time.perf_counter()
        sequential = [post(url, body, content_type) for _ in range(requests)]
        sequential_s = time.perf_counter() - t
        after_sequential = rss_mb(pid)
        t = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            concurrent = list(pool.map(lambda _: post(url, body, content_type), range(requests)))
        concurrent_s = time.perf_counter() - t
        return {
            "statuses": sorted(set(sequential + concurrent)),
            "rss_mb_started": round(started_mb, 1),
            "rss_mb_after_sequential": round(after_sequential, 1),
            "rss_mb_after_8_concurrent": round(rss_mb(pid), 1),
            "peak_rss_mb": round(rss_mb(pid, "VmHWM"), 1),
            "seconds_per_request_sequential": round(sequential_s / requests, 3),
            "seconds_8_concurrent": round(concurrent_s, 2),
            "photo_bytes": len(body),
        }
    finally:
        from scripts.local_server import stop_server

        stop_server(proc)


def gradient_png(width: int, height: int) -> bytes:
    """A horizontal grey gradient: tiny as PNG (8000x5000: ~300 KB), width x height pixels to decode (the
    adversary's image, and tests/robustness/test_load_shedding.py's)."""
    import io

    import numpy as np
    from PIL import Image

    row = np.linspace(0, 255, width, dtype=np.float32).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(np.stack([np.tile(row, (height, 1))] * 3, axis=-1)).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def post_body_of(url: str, size: int) -> int:
    """POST ``size`` bytes of raw image body, streamed (the client never holds it); the status, or 0 when the
    server answered and closed before taking it all."""
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=300)
    chunk = b"\xff" * (1024 * 1024)
    try:
        connection.request(
            "POST",
            "/",
            body=(chunk for _ in range(size // len(chunk))),
            headers={"Content-Type": "image/jpeg", "Content-Length": str(size)},
        )
        return connection.getresponse().status
    except OSError:
        return 0
    finally:
        connection.close()


def attack(name: str, flood, smoke: bool, env: dict | None = None) -> dict:
    """A fresh server, ``flood(url)`` run against it; RSS before, peak, and 2 s after it ends."""
    proc, url = serve(env or {})
    try:
        pid = worker_pid(proc.pid)
        post(url, big_photo("JPEG", 1500).read_bytes(), "image/jpeg")  # the model loaded: the baseline
        before = rss_mb(pid)
        outcome = flood(url)
        time.sleep(2)
        return {
            "rss_mb_before": round(before, 1),
            "peak_rss_mb": round(rss_mb(pid, "VmHWM"), 1),
            "rss_mb_idle_after": round(rss_mb(pid), 1),
            **outcome,
        }
    finally:
        from scripts.local_server import stop_server

        stop_server(proc)


def attacks(smoke: bool) -> dict:
    width, height = (2000, 1250) if smoke else (8000, 5000)
    png = gradient_png(width, height)
    phone = big_photo("JPEG", 1000 if smoke else 3464).read_bytes()  # 12 MP
    clients = 4 if smoke else 16

    def pngs_and_a_phone(url: str) -> dict:
        with ThreadPoolExecutor(max_workers=clients) as pool:
            futures = [pool.submit(post, url, png, "image/png") for _ in range(clients)]
            time.sleep(0.5)
            phone_seconds = []
            for _ in range(3):
                t = time.perf_counter()
                assert post(url, phone, "image/jpeg") == 200
                phone_seconds.append(time.perf_counter() - t)
            statuses = [f.result() for f in futures]
        return {
            "answered_200": statuses.count(200),
            "shed_503": statuses.count(503),
            "phone_photo_seconds_median": round(sorted(phone_seconds)[1], 2),
        }

    def bodies(count: int, size: int):
        def flood(url: str) -> dict:
            with ThreadPoolExecutor(max_workers=count) as pool:
                statuses = list(pool.map(lambda _: post_body_of(url, size), range(count)))
            return {"statuses": sorted(set(statuses))}

        return flood

    mb = 1024 * 1024
    return {
        f"{clients} clients of {width * height / 1e6:.0f} MP PNGs": attack("pngs", pngs_and_a_phone, smoke),
        "8 concurrent 30 MB bodies": attack("bodies", bodies(8, (2 if smoke else 30) * mb), smoke),
        "one 500 MB body": attack("huge", bodies(1, (4 if smoke else 500) * mb), smoke),
        "4 concurrent 16 MiB JSON bodies of empty objects": attack("json", json_objects(16 * mb), smoke),
        "4 concurrent batches of 16 URLs of ~10 MiB photos": url_batches(smoke),
    }


def json_objects(size: int):
    """``{"images": [{}, {}, ...]}`` up to ``size`` bytes: millions of objects if parsed before any check."""
    body = b'{"images": [' + b"{}, " * ((size - 20) // 4) + b"{}]}"

    def flood(url: str) -> dict:
        with ThreadPoolExecutor(max_workers=4) as pool:
            statuses = list(pool.map(lambda _: post(url, body, "application/json"), range(4)))
        return {"statuses": sorted(set(statuses))}

    return flood


def url_batches(smoke: bool) -> dict:
    """Four clients each POST a batch of 16 URLs of a big JPEG served on loopback (the server allows it): every
    fetched image would be held until its batch is classified if the service kept them all."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    # A 36 MP JPEG padded after its end marker (decoders ignore what follows) to just under MAX_IMAGE_BYTES: the
    # largest image a URL may return, so the bytes held per fetch are the most they can be.
    photo = big_photo("JPEG", 1500 if smoke else 6000).read_bytes()
    photo += b"\0" * max(0, (1_000_000 if smoke else 10_400_000) - len(photo))

    class Photos(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(photo)))
            self.end_headers()
            self.wfile.write(photo)

        def log_message(self, *args: object) -> None:
            pass

    photos = ThreadingHTTPServer(("127.0.0.1", 0), Photos)
    photos.daemon_threads = True
    threading.Thread(target=photos.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{photos.server_address[1]}"
    try:
        batch = json.dumps({"urls": [f"{base}/photo-{i}.jpg" for i in range(16)], "top_k": 1}).encode()

        def flood(url: str) -> dict:
            with ThreadPoolExecutor(max_workers=4) as pool:
                statuses = list(pool.map(lambda _: post(url, batch, "application/json"), range(4)))
            return {"photo_mb": round(len(photo) / 1e6, 1), "statuses": sorted(set(statuses))}

        env = {"FETCH_ALLOW_NETWORKS": "127.0.0.0/8", "FETCH_TOTAL_TIMEOUT": "120"}
        return attack("urls", flood, smoke, env)
    finally:
        photos.shutdown()


def run(smoke: bool = False) -> dict:
    requests = 2 if smoke else 20
    side = 1500 if smoke else 6000
    rows = {}
    for fmt, content_type in (("JPEG", "image/jpeg"), ("PNG", "image/png")):
        photo = big_photo(fmt, side)
        rows[fmt] = measure(photo, content_type, requests, json.loads(os.environ.get("BENCH_SERVER_ENV", "{}")))
    result = {"photo_side": side, "requests_each": requests, "threads": 8, "by_format": rows, "attacks": attacks(smoke)}
    return publish(
        "server_memory",
        result,
        f"functions-framework RSS, {side}x{side} photos (MB)",
        [f"{fmt} {stage}" for fmt in rows for stage in ("sequential", "8 concurrent", "peak")],
        [
            v
            for r in rows.values()
            for v in (r["rss_mb_after_sequential"], r["rss_mb_after_8_concurrent"], r["peak_rss_mb"])
        ],
        "MB",
    )


if __name__ == "__main__":
    print(json.dumps(run("--smoke" in sys.argv), indent=2))
