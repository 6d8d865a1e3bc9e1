"""The real functions-framework server (gunicorn, threads) on a loopback port, with concurrent requests."""

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.helpers import http_post as post


@pytest.fixture(scope="module")
def server(gcp_server):
    return gcp_server()[0]


def test_url_and_errors_over_real_http(server, image_server, pants_photo):
    base, routes = image_server
    routes["/gcp-pants.jpg"] = (200, {"Content-Type": "image/jpeg"}, pants_photo.read_bytes())
    status, body = post(server, json.dumps({"url": base + "/gcp-pants.jpg"}).encode())
    assert status == 200 and max(body, key=body.get) == "pants"
    status, body = post(server, b"{broken", "application/json")
    assert status == 400 and body["error"]["type"] == "bad_request"
    status, body = post(server, pants_photo.read_bytes(), "image/jpeg")
    assert status == 200 and max(body, key=body.get) == "pants"


def test_32_concurrent_requests_are_all_correct(server, labelled_photos):
    """Threads share one process: each must get its own interpreter and its own image's answer."""
    photos = [(label, sorted((labelled_photos / label).glob("*.jpg"))[:4]) for label in ("pants", "t-shirt")]
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


def test_the_json_404_carries_the_cors_headers_too(gcp_server):
    """functions-framework's own routes (/favicon.ico) are answered with the service's JSON 404, which an allowed
    site's page may read like every other answer."""
    import urllib.error
    import urllib.request

    url, _ = gcp_server(CORS_ALLOW_ORIGINS="https://shop.example")
    request = urllib.request.Request(url + "/favicon.ico", headers={"Origin": "https://shop.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 404 and json.loads(refused.value.read())["error"]["type"] == "not_found"
    assert refused.value.headers["Access-Control-Allow-Origin"] == "https://shop.example"
