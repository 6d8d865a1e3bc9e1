"""Edge cases of requests: refused connections and impossible host names,
strict query integers, odd Lambda events, every kind of bad batch item, slow URLs under one deadline, truncated
PNGs, big decodes taking turns. Against the real functions-framework server or, for Lambda-only event shapes,
through handlers.aws.lambda_handler."""

import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from scripts.local_server import free_port
from tests.helpers import http_post


@pytest.fixture(scope="module")
def server(gcp_server):
    return gcp_server(FETCH_TOTAL_TIMEOUT="3")[0]


def test_a_refused_connection_is_502_fetch_failed_not_a_timeout(server):
    closed = free_port()  # nothing listens there
    started = time.monotonic()
    status, body = http_post(server, json.dumps({"url": f"http://127.0.0.1:{closed}/a.jpg"}).encode())
    assert status == 502 and body["error"]["type"] == "fetch_failed", body
    assert "cannot connect" in body["error"]["message"] and time.monotonic() - started < 2


def test_a_host_name_that_cannot_be_a_host_name_is_400(server):
    status, body = http_post(server, json.dumps({"url": "http://" + "a" * 64 + ".example/x.jpg"}).encode())
    assert status == 400 and "not a valid host name" in body["error"]["message"], body


@pytest.mark.parametrize("value", ["1_0", "+3", "3 ", " 3", "\u0663", "\u00b3", "3.0", "0x3", ""])
def test_query_integers_are_as_strict_as_json_ones(server, pants_photo, value):
    url = server + "?" + urllib.parse.urlencode({"top_k": value})
    status, body = http_post(url, pants_photo.read_bytes(), "image/jpeg")
    assert status == 400 and body["error"]["message"] == "'top_k' must be an integer", (value, body)
    status, body = http_post(server + "?top_k=3", pants_photo.read_bytes(), "image/jpeg")
    assert status == 200 and len(body) == 3


def test_every_kind_of_bad_batch_item_is_answered_in_its_place(server, pants_photo, image_server):
    import base64

    base, routes = image_server
    routes["/batch-pants.jpg"] = (200, {"Content-Type": "image/jpeg"}, pants_photo.read_bytes())
    good = base64.b64encode(pants_photo.read_bytes()).decode()
    status, body = http_post(server, json.dumps({"images": [good, "not*base64", 7, "aGk=", ""], "top_k": 1}).encode())
    assert status == 200, body
    assert list(body[0]) == ["pants"]
    assert [item["error"]["type"] for item in body[1:]] == [
        "bad_request",
        "bad_request",
        "invalid_image",
        "invalid_image",  # "": an empty image, not a malformed request
    ]
    urls = [base + "/batch-pants.jpg", 5, "ftp://example.com/x.jpg", "http://169.254.169.254/", base + "/nope"]
    status, body = http_post(server, json.dumps({"urls": urls, "top_k": 1}).encode())
    assert status == 200, body
    assert list(body[0]) == ["pants"]
    assert [item["error"]["type"] for item in body[1:]] == ["bad_request", "bad_request", "bad_request", "fetch_failed"]
    # The request itself stays one error: a batch that is not a list, or too long.
    assert http_post(server, json.dumps({"urls": "x"}).encode())[0] == 400
    assert http_post(server, json.dumps({"urls": [base] * 17}).encode())[0] == 400


def test_a_batch_of_urls_is_fetched_concurrently_under_one_deadline(server, pants_photo, image_server):
    base, routes = image_server
    photo = pants_photo.read_bytes()

    def slow(handler):  # answers after 0.5 s
        time.sleep(0.5)
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Content-Length", str(len(photo)))
        handler.end_headers()
        handler.wfile.write(photo)

    routes["/slow-pants.jpg"] = slow
    started = time.monotonic()
    status, body = http_post(server, json.dumps({"urls": [base + "/slow-pants.jpg"] * 8, "top_k": 1}).encode())
    elapsed = time.monotonic() - started
    assert status == 200 and all(list(item) == ["pants"] for item in body), body
    assert elapsed < 2.0, f"8 URLs of 0.5 s each took {elapsed:.1f}s: not fetched concurrently"


def test_a_png_that_declares_more_rows_than_it_holds_is_422(server):
    from tests.core.test_images import png_from_rows

    bomb = png_from_rows(6300, 6300, b"".join(b"\x00" + b"\x80" * 6300 for _ in range(50)))
    assert len(bomb) < 2000
    started = time.monotonic()
    status, body = http_post(server, bomb, "image/png")
    assert status == 422 and "PNG is truncated" in body["error"]["message"], body
    assert time.monotonic() - started < 1.0


def drip_headers(handler):
    """A server that sends one header line every 0.4 s, for 16 s: each read is quick, the whole is not."""
    handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\n")
    try:
        for i in range(40):
            handler.wfile.write(f"X-Drip-{i}: x\r\n".encode())
            handler.wfile.flush()
            time.sleep(0.4)
    except OSError:  # the client gave up
        pass
    handler.close_connection = True


def test_the_total_timeout_covers_the_response_headers(server, image_server):
    base, routes = image_server
    routes["/drip.jpg"] = drip_headers
    started = time.monotonic()
    status, body = http_post(server, json.dumps({"url": base + "/drip.jpg"}).encode())
    elapsed = time.monotonic() - started
    assert status == 504 and body["error"]["type"] == "fetch_timeout", body
    assert elapsed < 4.0, f"FETCH_TOTAL_TIMEOUT=3 but the request took {elapsed:.1f}s"
    # A batch shares the one budget: two dripping URLs and a good one still end by the deadline.
    started = time.monotonic()
    status, body = http_post(server, json.dumps({"urls": [base + "/drip.jpg"] * 2}).encode())
    assert status == 200 and [item["error"]["type"] for item in body] == ["fetch_timeout"] * 2
    assert time.monotonic() - started < 4.0


def test_big_jpegs_decode_at_reduced_scale_and_small_ones_exactly():
    from core.images import open_image
    from tests.helpers import image_bytes

    big = open_image(image_bytes("JPEG", size=(6000, 4000)), 40_000_000, (192, 192), 16_000_000)
    assert big.size == (750, 500)  # 1/8 scale: 24 MP would be ~100 MB decoded, this is 1.5 MB
    small = open_image(image_bytes("JPEG", size=(4000, 3000)), 40_000_000, (192, 192), 16_000_000)
    assert small.size == (4000, 3000)  # 12 MP: full size, the pixels Keras would see


def test_the_pixel_budget_lets_big_decodes_take_turns():
    import threading

    from core.errors import ServiceBusy
    from core.memory import PixelBudget, release_freed_memory

    budget, inside, peak, shed, lock = PixelBudget(48, wait_seconds=5), [0], [0], [0], threading.Lock()
    together = threading.Barrier(6)

    def decode(pixels):
        together.wait()  # all six ask at once
        try:
            with budget.hold(pixels):
                with lock:
                    inside[0] += pixels
                    peak[0] = max(peak[0], inside[0])
                time.sleep(0.2)
                with lock:
                    inside[0] -= pixels
        except ServiceBusy:  # load shed: a large decode waits only while no other large one waits
            with lock:
                shed[0] += 1

    threads = [threading.Thread(target=decode, args=(36,)) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert peak[0] == 36  # never two 36-pixel decodes in a 48-pixel budget
    assert 1 <= shed[0] <= 4  # one runs, one waits; the others were shed (how many depends on timing)
    with budget.hold(100):  # larger than the whole budget: runs alone rather than never
        pass
    busy = PixelBudget(10, wait_seconds=0.1)
    with busy.hold(10), pytest.raises(ServiceBusy, match="retry"):
        with busy.hold(1):
            pass
    assert release_freed_memory() is True  # glibc here, as on Lambda, Cloud Functions and Azure


def test_eight_concurrent_36_megapixel_pngs_are_answered_or_shed(server):
    """They take turns in the decode budget instead of holding 8 x 150 MB at once (bench/server_memory.py); past
    one waiting, the rest are shed at once with 503 and Retry-After (tests/robustness/test_load_shedding.py)."""
    import io
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    from PIL import Image

    gradient = np.linspace(0, 255, 6000, dtype=np.float32)
    pixels = np.stack([np.tile(gradient, (6000, 1))] * 3, axis=-1).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: http_post(server, buffer.getvalue(), "image/png"), range(8)))
    assert {status for status, _ in answers} <= {200, 503} and any(status == 200 for status, _ in answers)
    assert all(body["error"]["type"] == "service_busy" for status, body in answers if status == 503)
