"""Which hosts an image URL may point to, so that the service never becomes an SSRF proxy (OWASP's guidance).

- http and https only, credentials in the URL refused, a host name DNS could hold;
- the host is resolved here and *every* address checked: anything not globally routable (loopback,
  private, link-local incl. cloud metadata, multicast, reserved, IPv4-mapped/NAT64 forms) is refused unless
  it falls in the ``FETCH_ALLOW_NETWORKS`` allow-list; odd spellings (``2130706433``, ``0x7f.1``) resolve to
  the address they mean and are checked as such.

fetch.py then connects to the address checked here (no DNS-rebinding window).
"""

from __future__ import annotations

import ipaddress
import queue
import re
import socket
import threading
from collections.abc import Iterable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from .errors import BadRequest, FetchFailed, FetchTimeout

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

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


def checked_url_parts(url: str) -> UrlParts:
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
    if not valid_host(parts.hostname):
        raise BadRequest(f"the URL's host name '{parts.hostname[:100]}' is not a valid host name")
    port = port or (443 if parts.scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return UrlParts(parts.scheme, parts.hostname, port, target)


def valid_host(host: str) -> bool:
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
