"""URL fetching: real HTTP on loopback, SSRF refusals, timeouts, caps, redirects and kept connections."""

import http.server
import ipaddress
import socket
import threading
import time

import pytest

from core import addresses
from core.addresses import is_public
from core.errors import BadRequest, FetchFailed, FetchTimeout, PayloadTooLarge, UnsupportedMediaType
from core.fetch import fetch_image_bytes
from core.settings import Settings
from tests.helpers import image_bytes

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


def fetch_settings(**kw) -> Settings:
    """Settings for these tests: short timeouts, a small byte cap, the loopback server allowed."""
    base = dict(
        fetch_connect_timeout=1.0,
        fetch_total_timeout=2.0,
        max_image_bytes=100_000,
        fetch_max_redirects=2,
        fetch_allow_networks=LOOPBACK,
    )
    base.update(kw)
    return Settings(**base)


def test_fetches_from_allow_listed_loopback(image_server):
    base, routes = image_server
    body = image_bytes("JPEG")
    routes["/ok.jpg"] = (200, {"Content-Type": "image/jpeg"}, body)
    assert fetch_image_bytes(base + "/ok.jpg", fetch_settings()) == body


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "2130706433",
        "0x7f.1",
        "0177.0.0.1",
        "127.1",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "169.254.169.254",
        "10.0.0.1",
        "192.168.1.1",
        "172.16.0.1",
        "0.0.0.0",
        "[fd00:ec2::254]",
        "100.64.0.1",
        "224.0.0.1",
        "[fe80::1]",
        "[::127.0.0.1]",
        "[::]",
        "[64:ff9b::a9fe:a9fe]",
        "[2002:a9fe:a9fe::1]",
        "255.255.255.255",
        "240.0.0.1",
    ],
)
def test_non_public_addresses_are_refused_by_default(host):
    with pytest.raises(BadRequest, match="non-public"):
        fetch_image_bytes(f"http://{host}/x.jpg", fetch_settings(fetch_allow_networks=()))


def test_is_public():
    assert is_public(ipaddress.ip_address("93.184.216.34"))
    assert is_public(ipaddress.ip_address("2606:4700::1111"))
    assert not is_public(ipaddress.ip_address("::ffff:10.0.0.1"))
    assert not is_public(ipaddress.ip_address("2002:7f00:1::"))  # 6to4 of 127.0.0.1


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://example.com/a.jpg", "http and https"),
        ("file:///etc/passwd", "http and https"),
        ("http:///nohost", "no host"),
        ("http://user:pw@example.com/a.jpg", "credentials"),
        ("http://example.com:99999/a.jpg", "invalid URL"),
    ],
)
def test_bad_urls(url, message):
    with pytest.raises(BadRequest, match=message):
        fetch_image_bytes(url, fetch_settings())


def test_unresolvable_host_is_502():
    with pytest.raises(FetchFailed, match="cannot resolve"):
        fetch_image_bytes("http://no-such-host.invalid/a.jpg", fetch_settings())


def test_http_error_and_wrong_content_type(image_server):
    base, routes = image_server
    routes["/500"] = (500, {}, b"oops")
    routes["/html"] = (200, {"Content-Type": "text/html"}, b"<html></html>")
    with pytest.raises(FetchFailed, match="HTTP 500"):
        fetch_image_bytes(base + "/500", fetch_settings())
    with pytest.raises(UnsupportedMediaType, match="text/html"):
        fetch_image_bytes(base + "/html", fetch_settings())


def test_size_cap_by_announced_length_and_while_streaming(image_server):
    base, routes = image_server

    def unannounced(handler):  # no Content-Length: the body ends when the connection closes
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.end_headers()
        for _ in range(30):
            handler.wfile.write(b"x" * 10_000)

    def announced_only(handler):  # a length over the cap, then nothing: refused without waiting for the body
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Content-Length", "300000")
        handler.end_headers()
        handler.wfile.flush()
        time.sleep(3)

    routes["/big"] = unannounced
    routes["/big2"] = (200, {"Content-Type": "image/jpeg"}, b"x" * 300_000)
    routes["/big3"] = announced_only
    with pytest.raises(PayloadTooLarge):
        fetch_image_bytes(base + "/big", fetch_settings())
    with pytest.raises(PayloadTooLarge):
        fetch_image_bytes(base + "/big2", fetch_settings())
    started = time.monotonic()
    with pytest.raises(PayloadTooLarge):
        fetch_image_bytes(base + "/big3", fetch_settings())
    assert time.monotonic() - started < 1.0


def test_a_content_length_python_cannot_read_is_no_crash(image_server):
    """A length of 5,000 digits is over what Python converts to an int: the body is read in chunks instead."""
    base, routes = image_server
    body = image_bytes("JPEG")

    def absurd(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Content-Length", "9" * 5000)
        handler.end_headers()
        handler.wfile.write(body)

    routes["/absurd.jpg"] = absurd
    assert fetch_image_bytes(base + "/absurd.jpg", fetch_settings()) == body


def test_a_body_of_announced_length_is_read_into_one_buffer(image_server, monkeypatch):
    """A body with a Content-Length goes straight into a buffer of that size; a compressed or chunked one is read in
    chunks (urllib3 decodes it, and its decoded length is another); a body shorter than announced is refused."""
    import gzip

    from core import fetch

    base, routes = image_server
    body = image_bytes("JPEG")
    routes["/plain.jpg"] = (200, {"Content-Type": "image/jpeg"}, body)
    routes["/gzip.jpg"] = (200, {"Content-Type": "image/jpeg", "Content-Encoding": "gzip"}, gzip.compress(body))

    def chunked(handler):
        handler.protocol_version = "HTTP/1.1"
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Transfer-Encoding", "chunked")
        handler.send_header("Connection", "close")
        handler.end_headers()
        for start in range(0, len(body), 1000):
            piece = body[start : start + 1000]
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        handler.wfile.write(b"0\r\n\r\n")

    def short(handler):  # announces more than it sends, then closes
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        handler.send_header("Content-Length", str(len(body) + 5000))
        handler.end_headers()
        handler.wfile.write(body)

    routes["/chunked.jpg"], routes["/short.jpg"] = chunked, short
    into, read_into = [], fetch._read_into
    monkeypatch.setattr(fetch, "_read_into", lambda *args: into.append(args[1]) or read_into(*args))
    for path in ("/plain.jpg", "/gzip.jpg", "/chunked.jpg"):
        assert fetch_image_bytes(base + path, fetch_settings()) == body
    assert into == [len(body)]  # the plain one only
    with pytest.raises(FetchFailed, match=f"ended after {len(body)} of {len(body) + 5000} bytes"):
        fetch_image_bytes(base + "/short.jpg", fetch_settings())


@pytest.mark.parametrize("announced", [False, True])  # read in chunks, or into one buffer of the announced length
def test_slow_drip_is_cut_at_the_total_deadline(image_server, announced):
    base, routes = image_server

    def drip(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", "image/jpeg")
        if announced:
            handler.send_header("Content-Length", "100")
        handler.end_headers()
        for _ in range(100):
            handler.wfile.write(b"x")
            handler.wfile.flush()
            time.sleep(0.1)

    routes["/drip"] = drip
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetch_image_bytes(base + "/drip", fetch_settings(fetch_total_timeout=1.0))
    assert time.monotonic() - started < 2.0


def test_deadlines_sooner_than_the_watchdogs_idle_wake_are_kept_side_by_side(image_server):
    """One watchdog thread serves every request and sleeps up to IDLE_WAKE_SECONDS: a sooner deadline wakes it,
    and each of several requests at once is cut at its own deadline, not at another's."""
    from concurrent.futures import ThreadPoolExecutor

    from core.deadline import IDLE_WAKE_SECONDS

    base, routes = image_server

    def drip(handler):  # a header line every 50 ms: no read times out and no body loop checks the clock
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(90):
            handler.wfile.write(b"X-Padding: 1\r\n")
            handler.wfile.flush()
            time.sleep(0.05)

    routes["/drip-headers"] = drip

    def cut_after(seconds: float) -> float:
        started = time.monotonic()
        with pytest.raises(FetchTimeout):
            fetch_image_bytes(base + "/drip-headers", fetch_settings(fetch_total_timeout=seconds))
        return time.monotonic() - started

    assert IDLE_WAKE_SECONDS >= 1.0
    time.sleep(0.2)  # the watchdog thread, if it exists, is asleep for its idle wait
    assert 0.25 <= cut_after(0.25) < 0.75  # asleep for up to a second otherwise
    with ThreadPoolExecutor(3) as pool:
        took = list(pool.map(cut_after, (0.9, 0.3, 0.6)))
    for deadline, seconds in zip((0.9, 0.3, 0.6), took, strict=True):
        assert deadline <= seconds < deadline + 0.45  # each at its own deadline, none held to another's
    assert took[1] < 0.6  # the soonest one woke the thread: left to its idle wake, it takes about 0.8 s


def test_hanging_server_times_out(image_server):
    base, routes = image_server
    routes["/hang"] = lambda handler: time.sleep(3)
    started = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetch_image_bytes(base + "/hang", fetch_settings(fetch_total_timeout=1.0))
    assert time.monotonic() - started < 2.0


def test_redirects_are_followed_and_rechecked(image_server):
    base, routes = image_server
    body = image_bytes("PNG")
    routes["/final.png"] = (200, {"Content-Type": "image/png"}, body)
    routes["/hop"] = (302, {"Location": "/final.png"}, b"")
    routes["/loop"] = (302, {"Location": "/loop"}, b"")
    routes["/to-metadata"] = (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"")
    assert fetch_image_bytes(base + "/hop", fetch_settings()) == body
    with pytest.raises(FetchFailed, match="too many redirects"):
        fetch_image_bytes(base + "/loop", fetch_settings())
    with pytest.raises(BadRequest, match="non-public"):
        fetch_image_bytes(base + "/to-metadata", fetch_settings())


def test_ipv6_loopback_when_allow_listed():
    """A URL with an IPv6 literal reaches an allow-listed server, Host header bracketed with its port."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    seen = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen["host"] = self.headers["Host"]
            body = image_bytes("PNG")
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(http.server.HTTPServer):
        address_family = socket.AF_INET6

    try:
        server = Server(("::1", 0), Handler)
    except OSError:
        pytest.skip("cannot bind ::1 here")
    threading.Thread(target=server.handle_request, daemon=True).start()
    port = server.server_address[1]
    data = fetch_image_bytes(
        f"http://[::1]:{port}/a.png", fetch_settings(fetch_allow_networks=(ipaddress.ip_network("::1/128"),))
    )
    server.server_close()
    assert data.startswith(b"\x89PNG") and seen["host"] == f"[::1]:{port}"


@pytest.fixture
def keepalive_server():
    """An HTTP/1.1 server that keeps connections open and counts them; yields (base_url, state)."""
    state = {"connections": 0}
    body = image_bytes("JPEG")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def setup(self):
            state["connections"] += 1
            super().setup()

        def do_GET(self):
            payload = {"/big.jpg": body * 500, "/empty.jpg": b""}.get(self.path, body)  # big: over one read (64 KB)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            # /drop.jpg: closes the connection without announcing it, as an idle-timeout does
            self.close_connection = self.path == "/drop.jpg"

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state["body"] = body
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def test_a_kept_connection_serves_the_next_fetches(keepalive_server):
    base, state = keepalive_server
    for _ in range(3):
        assert fetch_image_bytes(base + "/a.jpg", fetch_settings()) == state["body"]
    assert state["connections"] == 1


def test_a_half_read_connection_is_not_reused(keepalive_server):
    base, state = keepalive_server
    with pytest.raises(PayloadTooLarge):
        fetch_image_bytes(base + "/big.jpg", fetch_settings(max_image_bytes=len(state["body"]) * 2))
    # the rest of the big body must not leak into the next answer
    assert fetch_image_bytes(base + "/a.jpg", fetch_settings()) == state["body"]
    assert state["connections"] == 2


def test_an_empty_body_leaves_its_connection_ready_for_the_next_fetch(keepalive_server):
    base, state = keepalive_server
    assert fetch_image_bytes(base + "/empty.jpg", fetch_settings()) == b""
    assert fetch_image_bytes(base + "/a.jpg", fetch_settings()) == state["body"]
    assert state["connections"] == 1


def test_connections_the_server_dropped_are_replaced(keepalive_server):
    base, state = keepalive_server
    for _ in range(3):
        assert fetch_image_bytes(base + "/drop.jpg", fetch_settings()) == state["body"]
    assert state["connections"] == 3


def test_address_literals_need_no_resolver(image_server, monkeypatch):
    base, routes = image_server
    routes["/literal.jpg"] = (200, {"Content-Type": "image/jpeg"}, image_bytes("JPEG"))

    def no_resolver(*args, **kwargs):  # the resolver thread is for host names only
        raise AssertionError("resolver used for an address literal")

    monkeypatch.setattr(addresses, "_getaddrinfo", no_resolver)
    assert fetch_image_bytes(base + "/literal.jpg", fetch_settings()) == routes["/literal.jpg"][2]
    with pytest.raises(BadRequest, match="non-public"):  # and literals are still checked
        fetch_image_bytes(base + "/literal.jpg", fetch_settings(fetch_allow_networks=()))


def test_a_batch_holds_only_a_few_fetched_images_at_once(image_server):
    """Sixteen URLs, taken one at a time by a slow consumer (the classifier): no more than FETCH_CONCURRENCY are
    fetched ahead of it, so a batch never holds all sixteen images' bytes at once."""
    from core.fetch import FETCH_CONCURRENCY, Fetcher
    from core.request import Source

    base, routes = image_server
    served = []
    body = image_bytes("JPEG")

    def counted(handler):
        served.append(handler.path)
        handler.reply(200, body, {"Content-Type": "image/jpeg"})

    routes["/batch.jpg"] = counted
    sources = [Source("url", f"{base}/batch.jpg?{i}") for i in range(16)]
    images = Fetcher(fetch_settings()).fetch_each(sources, time.monotonic() + 10)
    ahead = []
    for taken in range(16):
        assert next(images) == body
        time.sleep(0.05)  # the consumer's work on the image it took
        ahead.append(len(served) - taken - 1)  # fetched, or being fetched, but not yet taken
    assert next(images, None) is None
    assert max(ahead) <= FETCH_CONCURRENCY - 1 and len(served) == 16, ahead
