"""Cross-origin requests from web apps on other sites (the Fetch standard's CORS protocol), answered the same on
every cloud because the service answers them, not the platform.

``CORS_ALLOW_ORIGINS`` lists the exact origins allowed (``https://shop.example,https://app.example``), or ``*``
alone for any; empty (the default) sends no CORS headers, so browsers keep other sites out. No credentials mode:
the API takes no cookies, and a key (``x-api-key``, ``x-functions-key``) is a header like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .addresses import valid_host

ANY = "*"
METHODS = "GET, HEAD, POST, OPTIONS"
# The request headers a page may send: JSON or an image as the body, the platforms' key headers.
ALLOWED_HEADERS = ("content-type", "x-api-key", "x-functions-key", "authorization")
# What a page's script may read from an answer besides the CORS-safelisted headers.
EXPOSED_HEADERS = "X-Request-Id, Retry-After"
PREFLIGHT_MAX_AGE = "600"  # seconds a browser may keep a preflight's answer (Chromium caps it at 7200)


DEFAULT_PORTS = {"http": ":80", "https": ":443"}


def parse_origins(text: str) -> tuple[str, ...]:
    """``CORS_ALLOW_ORIGINS`` as origins: each ``scheme://host[:port]`` exactly as browsers send it, or ``*``. A
    scheme's default port is dropped, as browsers drop it (``https://shop.example:443`` -> ``https://shop.example``);
    any other form a browser never sends is refused, so the setting cannot silently match nothing."""
    origins = tuple(_without_default_port(part.strip()) for part in text.split(",") if part.strip())
    if ANY in origins and len(origins) > 1:
        raise ValueError("'*' allows every origin; write it alone")
    for origin in origins:
        if origin == ANY:
            continue
        if not origin.isascii():
            raise ValueError(f"{origin!r}: browsers send a host name in its ASCII form (xn--...); write that form")
        if not _is_origin(origin):
            raise ValueError(f"{origin!r} is not an origin: use scheme://host[:port], no path or trailing slash")
        sent = _as_browsers_send(origin)
        if sent != origin:  # an empty port, leading zeros: the same origin, never spelled so by a browser
            raise ValueError(f"{origin!r}: browsers send this origin as {sent!r}; write that")
    return tuple(dict.fromkeys(origins))


def _without_default_port(origin: str) -> str:
    scheme = origin.partition("://")[0]
    port = DEFAULT_PORTS.get(scheme)
    return origin.removesuffix(port) if port and origin.endswith(port) else origin


def _as_browsers_send(origin: str) -> str:
    """The origin as the Fetch standard serialises it: the port as a plain number, and none for the default."""
    parts = urlsplit(origin)
    host = parts.netloc.rpartition(":")[0] if parts.port is not None or parts.netloc.endswith(":") else parts.netloc
    return _without_default_port(f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port is not None else ""))


def _is_origin(text: str) -> bool:
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and valid_host(parts.hostname or "")
        and text == f"{parts.scheme}://{parts.netloc}"  # nothing after the host, and the case browsers send
        and text.lower() == text
        and "@" not in parts.netloc
    )


@dataclass(frozen=True)
class CorsPolicy:
    origins: tuple[str, ...] = ()

    def preflight_headers(self, origin: str | None) -> dict[str, str]:
        """What an allowed origin's preflight is answered with (nothing for another origin: the browser refuses)."""
        if self._allowed(origin) is None:
            return {}
        return {
            "Access-Control-Allow-Methods": METHODS,
            "Access-Control-Allow-Headers": ", ".join(ALLOWED_HEADERS),
            "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
        }

    def answer_headers(self, origin: str | None, vary: str) -> Mapping[str, str]:
        """For every answer, errors included: which origin may read it. ``origin`` is the request's Origin header
        (read by the caller, inside its error handling: two different ones are a 400); ``vary`` is the answer's
        Vary so far."""
        if not self.origins:
            return {}
        if self.origins == (ANY,):  # the same answer for every origin: nothing to vary on
            return {"Access-Control-Allow-Origin": ANY, "Access-Control-Expose-Headers": EXPOSED_HEADERS}
        out = {"Vary": f"{vary}, Origin" if vary else "Origin"}  # caches must not hand one origin's answer to another
        if origin is not None and self._allowed(origin) is not None:
            out["Access-Control-Allow-Origin"] = origin
            out["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return out

    def _allowed(self, origin: str | None) -> str | None:
        if origin is None:
            return None
        return ANY if self.origins == (ANY,) else origin if origin in self.origins else None
