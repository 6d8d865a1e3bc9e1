"""The page a browser gets on GET: try the model by choosing, dropping, pasting or photographing an image.

One self-contained HTML file (page.html: no CDN, fonts or scripts from elsewhere, so it works on a function
without internet and never shows a photo to a third party), served with a Content-Security-Policy that allows
its own inline style and script by hash, requests to its own origin, and nothing else.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from pathlib import Path

PAGE = Path(__file__).resolve().parent / "page.html"


def _hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


@functools.lru_cache(maxsize=1)
def page() -> tuple[str, dict]:
    """The HTML and its response headers."""
    html = PAGE.read_text(encoding="utf-8")
    styles = [_hash(s) for s in re.findall(r"<style>(.*?)</style>", html, re.S)]
    scripts = [_hash(s) for s in re.findall(r"<script>(.*?)</script>", html, re.S)]
    policy = "; ".join(
        [
            "default-src 'none'",
            "style-src " + " ".join(styles),
            "script-src " + " ".join(scripts),
            "img-src blob: data:",  # the preview of the chosen photo, made in the browser
            "connect-src 'self'",  # the API itself
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )
    headers = {
        "Content-Type": "text/html; charset=utf-8",
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    return html, headers


def wants_html(accept: str | None) -> bool:
    """Content negotiation: a browser's navigation (text/html ranked above JSON) gets the page."""
    if not accept:
        return False
    ranks: dict[str, float] = {}
    for part in accept.split(","):
        kind, _, params = part.strip().partition(";")
        quality = 1.0
        match = re.search(r"q=([^;]*)", params)
        if match:
            try:
                quality = float(match.group(1))
            except ValueError:  # an unreadable weight counts as none
                quality = 0.0
        ranks[kind.strip().lower()] = max(quality, ranks.get(kind.strip().lower(), 0.0))
    html = max(ranks.get("text/html", 0.0), ranks.get("application/xhtml+xml", 0.0))
    return html > 0 and html >= ranks.get("application/json", 0.0)
