"""Fetch an image URL without becoming an SSRF proxy (OWASP's guidance).

- http and https only, credentials in the URL refused;
- the host is resolved here and *every* address checked: anything not globally routable (loopback,
  private, link-local incl. cloud metadata, multicast, reserved, IPv4-mapped/NAT64 forms) is refused unless
  it falls in the ``FETCH_ALLOW_NETWORKS`` allow-list; odd spellings (``2130706433``, ``0x7f.1``) resolve to
  the address they mean and are checked as such;
- the connection goes to the address that was checked (no DNS-rebinding window), with the original host
  name kept for the Host header, TLS SNI and certificate checks;
- redirects are followed by hand, at most N, each hop checked again;
- connect and read timeouts plus a total deadline that holds from connect to the last body byte (a watchdog
  shuts the connection when it passes, so a server dripping header lines cannot outlast it), and a byte cap
  enforced while streaming.

Connections are kept open (urllib3's PoolManager) per checked address and port, and for TLS per host name too: a
warm function that fetches from the same bucket or CDN again skips the TCP and TLS handshakes. Reuse cannot
bypass a check, because the key holds the address this request's resolution checked.
"""

from __future__ import annotations

import functools
import ipaddress
import queue
import re
import socket
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urljoin, urlsplit

from .errors import BadRequest, FetchFailed, FetchTimeout, PayloadTooLarge, ServiceError, UnsupportedMediaType
from .settings import IPNetwork, Settings

if TYPE_CHECKING:  # urllib3 itself is imported on the first URL request
    import urllib3

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

CHUNK = 64 * 1024
REDIRECTS = (301, 302, 303, 307, 308)
USER_AGENT = "serverless-clothing-classifier/1.0"
# Well-known ranges ipaddress' is_global misses or that wrap another address.
EXTRA_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "::/96",  # IPv4-compatible (deprecated), e.g. ::127.0.0.1: is_global misses it
        "64:ff9b::/96",
        "64:ff9b:1::/48",  # NAT64: may reach internal IPv4
        "2002::/16",  # 6to4: embeds an IPv4 address
        "2001::/32",  # Teredo
        "100.64.0.0/10",  # carrier-grade NAT
    )
)


# getaddrinfo has no timeout of its own: each lookup runs in a thread of its own, so a hung resolver cannot
# outlive the deadline, and a request whose lookups hang never queues another request's behind them (a shared
# pool did: 16 unanswered names made every other URL wait). Lookups still hanging are capped; past the cap a
# new lookup is refused at once (504) rather than starting more threads.
RESOLVING_MAX = 64
_resolving = threading.BoundedSemaphore(RESOLVING_MAX)
# A host name as DNS can hold it: labels of letters, digits, hyphens (not at either end; "_" as some real hosts
# have it), 1-63 characters, at most 253 in all. Anything else can never resolve: 400, not a lookup.
HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)")
POOLS_KEPT = 8  # hosts whose connections stay open
CONNECTIONS_KEPT = 8  # per host: as many as a threaded server (functions-framework, 8 threads) uses at once


class UrlParts(NamedTuple):
    scheme: str
    host: str
    port: int
    target: str  # the request target: path and query


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is not None:
            return is_public(embedded)
        if address.scope_id:
            return False
    if any(address in net for net in EXTRA_BLOCKED if net.version == address.version):
        return False
    return address.is_global and not address.is_multicast


def check_address(address: str, allow_networks: Iterable[IPNetwork]) -> IPAddress:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if any(ip in net for net in allow_networks if net.version == ip.version):
        return ip
    if not is_public(ip):
        raise BadRequest(f"the URL points to a non-public address ({ip}); only public hosts may be fetched")
    return ip


def resolve(host: str, port: int, allow_networks: Iterable[IPNetwork], timeout: float = 5.0) -> str:
    """Resolve ``host`` and check every address it has; the first one to connect to."""
    try:  # an address literal in standard form needs no resolver (odd spellings still go through it)
        return str(check_address(host, allow_networks))
    except ValueError:
        pass
    infos = _getaddrinfo(host, port, timeout)
    addresses = [check_address(str(info[4][0]), allow_networks) for info in infos]
    return str(addresses[0])


def _getaddrinfo(host: str, port: int, timeout: float) -> list[Any]:
    """socket.getaddrinfo in a thread of its own, given up after ``timeout`` (the thread ends when the system
    resolver gives up; it holds one of RESOLVING_MAX places until then)."""
    if not _resolving.acquire(blocking=False):
        raise FetchTimeout(f"too many host-name lookups are hanging on this instance; not resolving '{host}'")
    answer: queue.SimpleQueue[tuple[bool, Any]] = queue.SimpleQueue()

    def lookup() -> None:
        try:
            answer.put((True, socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))
        except (OSError, UnicodeError) as exc:
            answer.put((False, exc))
        finally:
            _resolving.release()

    try:
        threading.Thread(target=lookup, name="resolve", daemon=True).start()
    except RuntimeError:  # the process cannot start another thread
        _resolving.release()
        raise FetchTimeout(f"no thread left to resolve '{host}'") from None
    try:
        ok, result = answer.get(timeout=max(timeout, 0.001))
    except queue.Empty:
        raise FetchTimeout(f"resolving host '{host}' took too long") from None
    if not ok:
        raise FetchFailed(f"cannot resolve host '{host}': {result}")
    return result


def _checked_url_parts(url: str) -> UrlParts:
    """The parts of an acceptable URL: http(s), a valid host, no credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadRequest(f"invalid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise BadRequest("only http and https URLs can be fetched")
    if not parts.hostname:
        raise BadRequest("the URL has no host")
    if parts.username or parts.password:
        raise BadRequest("URLs with credentials are not accepted")
    if not _valid_host(parts.hostname):
        raise BadRequest(f"the URL's host name '{parts.hostname[:100]}' is not a valid host name")
    port = port or (443 if parts.scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return UrlParts(parts.scheme, parts.hostname, port, target)


def _valid_host(host: str) -> bool:
    """An IP address literal, or a name DNS could hold (internationalised names in their IDNA form)."""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
        return True
    except ValueError:
        pass
    try:
        name = host.encode("idna").decode("ascii").rstrip(".")
    except UnicodeError:
        return False
    return 0 < len(name) <= 253 and all(HOST_LABEL.fullmatch(label) for label in name.split("."))


def fetch_image_bytes(url: str, settings: Settings, deadline: float | None = None) -> bytes:
    """The body of ``url``, following checked redirects, within the ``FETCH_*`` settings and ``MAX_IMAGE_BYTES``;
    raises a ServiceError on every failure.

    ``deadline`` (a ``time.monotonic()`` value) lets several fetches of one request share one time budget.
    """
    if not isinstance(url, str) or not url:
        raise BadRequest("'url' must be a non-empty string")
    if deadline is None:
        deadline = time.monotonic() + settings.fetch_total_timeout
    too_long = f"fetching the image took longer than {settings.fetch_total_timeout:g}s"
    for _ in range(settings.fetch_max_redirects + 1):
        parts = _checked_url_parts(url)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchTimeout(too_long)
        address = resolve(parts.host, parts.port, settings.fetch_allow_networks, timeout=remaining)
        with Watchdog(deadline) as watchdog:
            try:
                location, body = _get(parts, address, deadline, settings)
            except ServiceError:
                if watchdog.fired:  # the shut connection surfaced as a protocol error
                    raise FetchTimeout(too_long) from None
                raise
            if watchdog.fired:  # a body cut short by the watchdog is not an image
                raise FetchTimeout(too_long)
        if location is None:
            return body
        url = urljoin(url, location)
    raise FetchFailed(f"too many redirects (more than {settings.fetch_max_redirects})")


def _get(parts: UrlParts, address: str, deadline: float, settings: Settings) -> tuple[str | None, bytes]:
    """One hop: (the redirect's Location, b"") or (None, the image bytes)."""
    response = _request(parts, address, deadline, settings)
    reusable = False
    try:
        if response.status in REDIRECTS and response.headers.get("Location"):
            return response.headers["Location"], b""
        if response.status != 200:
            raise FetchFailed(f"the image URL answered HTTP {response.status}")
        _check_content_type(response.headers.get("Content-Type", ""))
        body = _read_capped(response, deadline, settings.max_image_bytes)
        reusable = True  # read to the end: the connection can serve the next request
        return None, body
    finally:
        if not reusable:  # an unread or half-read body: this connection is done
            response.close()
        response.release_conn()


_WATCHED = threading.local()  # the watchdog of the fetch running on this thread


class Watchdog:
    """Shuts the socket of this thread's request when the deadline passes: timeouts bound each socket read,
    not their sum, and a server that drips one header line or byte at a time would never trip them."""

    def __init__(self, deadline: float) -> None:
        self.connection: Any = None  # set by _WatchedConnection.request
        # The connection's socket, kept here: http.client drops conn.sock once the headers of an answer that ends
        # the connection are read, while the body is still read from that socket.
        self.sock: socket.socket | None = None
        self.deadline = deadline
        self.fired = False
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> Watchdog:
        _WATCHED.watchdog = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        _WATCHED.watchdog = None

    @staticmethod
    def current() -> Watchdog | None:
        """The watchdog of the request running on this thread, if any."""
        return getattr(_WATCHED, "watchdog", None)

    def _fire(self) -> None:
        self.fired = True
        sock = self.sock or getattr(self.connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _watched(connection_class: Any) -> Any:
    """A urllib3 connection class that tells this thread's watchdog which connection its request uses."""

    class _WatchedConnection(connection_class):  # type: ignore[misc, valid-type]  # a class made at run time
        def connect(self) -> None:
            super().connect()
            watchdog = Watchdog.current()
            if watchdog is not None:
                watchdog.sock = self.sock

        def request(self, *args: Any, **kwargs: Any) -> Any:
            watchdog = Watchdog.current()
            if watchdog is not None:
                if watchdog.fired:  # a retry after the deadline: not started
                    raise TimeoutError("the request's deadline has passed")
                watchdog.connection, watchdog.sock = self, self.sock  # a kept connection: connect() is not called
            return super().request(*args, **kwargs)

    return _WatchedConnection


def watched_pool_manager(**kwargs: Any) -> urllib3.PoolManager:
    """A urllib3 PoolManager whose requests a ``Watchdog`` on the calling thread can cut off at its deadline
    (also used by the bulk command's endpoint client)."""
    import urllib3  # imported on the first URL request: requests carrying the image never pay for it

    class HTTPPool(urllib3.HTTPConnectionPool):
        ConnectionCls = _watched(urllib3.connection.HTTPConnection)

    class HTTPSPool(urllib3.HTTPSConnectionPool):
        ConnectionCls = _watched(urllib3.connection.HTTPSConnection)

    manager = urllib3.PoolManager(**kwargs)
    manager.pool_classes_by_scheme = {"http": HTTPPool, "https": HTTPSPool}
    return manager


@functools.lru_cache(maxsize=1)
def _pool_manager() -> urllib3.PoolManager:
    """urllib3's pool manager: the most recently used pools (closed when evicted), kept connections in each."""
    return watched_pool_manager(num_pools=POOLS_KEPT, maxsize=CONNECTIONS_KEPT, block=False, retries=False)


def drop_connections() -> None:
    """Close every kept connection; the next fetch opens new ones. After a SnapStart restore: every instance
    restored from one snapshot would otherwise share the snapshot's sockets (and their TLS state)."""
    if _pool_manager.cache_info().currsize:
        _pool_manager().clear()
    _pool_manager.cache_clear()


def _request(parts: UrlParts, address: str, deadline: float, settings: Settings) -> urllib3.BaseHTTPResponse:
    import urllib3

    scheme, host, port, target = parts
    host_header = f"[{host}]" if ":" in host else host  # IPv6 literals keep their brackets
    if port != (443 if scheme == "https" else 80):
        host_header += f":{port}"
    headers = {"Host": host_header, "User-Agent": USER_AGENT, "Accept": "image/*"}
    for attempt in (1, 2):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FetchTimeout(f"fetching the image took longer than {settings.fetch_total_timeout:g}s")
        timeout = urllib3.Timeout(connect=min(settings.fetch_connect_timeout, remaining), read=remaining)
        # Keyed by the checked address and, for TLS, the host name it is verified against.
        pool = _pool_manager().connection_from_host(
            address, port, scheme, pool_kwargs={"server_hostname": host, "assert_hostname": host}
        )
        reused = pool.num_requests > 0
        try:
            return pool.urlopen(
                "GET",
                target,
                headers=headers,
                timeout=timeout,
                redirect=False,
                preload_content=False,
                assert_same_host=False,
            )
        except urllib3.exceptions.NewConnectionError as exc:  # refused, unreachable: a ConnectTimeoutError subclass
            raise FetchFailed(f"cannot connect to the image URL: {_reason(exc)}") from None
        except (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.ReadTimeoutError):
            raise FetchTimeout("the image URL did not answer in time") from None
        except urllib3.exceptions.ProtocolError as exc:
            if reused and attempt == 1:  # a kept connection the server closed meanwhile (urllib3 dropped it)
                continue
            raise FetchFailed(f"cannot fetch the image URL: {_reason(exc)}") from None
        except urllib3.exceptions.HTTPError as exc:
            raise FetchFailed(f"cannot fetch the image URL: {_reason(exc)}") from None
    raise AssertionError("unreachable: the second attempt returns or raises")


def _check_content_type(content_type: str) -> None:
    kind = content_type.split(";", 1)[0].strip().lower()
    # Many servers send images as octet-stream; anything else (HTML, JSON...) is not an image.
    if kind and not (kind.startswith("image/") or kind in ("application/octet-stream", "binary/octet-stream")):
        raise UnsupportedMediaType(f"the URL returned '{kind}', not an image")


def _read_capped(response: urllib3.BaseHTTPResponse, deadline: float, max_bytes: int) -> bytes:
    import urllib3

    body = bytearray()
    try:
        # read1: at most one socket read per call, so the deadline is checked even on a slow drip.
        while chunk := response.read1(CHUNK):
            body += chunk
            if len(body) > max_bytes:
                raise PayloadTooLarge(f"the image at the URL is larger than {max_bytes} bytes")
            if time.monotonic() > deadline:
                raise FetchTimeout("fetching the image took too long")
    except urllib3.exceptions.ReadTimeoutError:
        raise FetchTimeout("the image URL stopped sending data") from None
    except urllib3.exceptions.HTTPError as exc:
        raise FetchFailed(f"the image download failed: {_reason(exc)}") from None
    return bytes(body)


def _reason(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    return str(reason).split(": ", 1)[-1][:200]
