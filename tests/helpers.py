"""What the tests share besides fixtures (those are in conftest.py): the repository's paths, images made on the
spot, requests as the adapters build them, a real HTTP POST, loopback HTTP servers, and phone-sized photos."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

from core.contract import Headers, Request

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "clothing-dataset-small"
MANIFEST = ROOT / "model" / "clothing-model.json"
SAMPLE = ROOT / "samples" / "pants.jpg"


def jpeg_of(img: Image.Image, **save) -> bytes:
    """An image (a photo's view, a resized photo) as a JPEG file's bytes; ``save``: Pillow's JPEG options."""
    buf = io.BytesIO()
    img.save(buf, "JPEG", **save)
    return buf.getvalue()


def image_bytes(fmt="PNG", size=(64, 48), mode="RGB", color=(200, 30, 30), **save) -> bytes:
    img = Image.new(mode, size, color if mode in ("RGB", "RGBA", "CMYK") else 128)
    buf = io.BytesIO()
    img.save(buf, fmt, **save)
    return buf.getvalue()


class QuietHandler(BaseHTTPRequestHandler):
    """A loopback server's request handler: no access log on stderr, and ``reply`` for a whole answer."""

    def reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def serve_on_loopback(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """``handler`` served on a free loopback port from a daemon thread: (server, "http://127.0.0.1:PORT"); stop it
    with ``server.shutdown()``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def as_typed_in_a_terminal() -> None:
    """``preexec_fn`` for a command a test interrupts with Ctrl-C (SIGINT): the child starts with SIGINT's default
    action, as in a terminal, whatever the test runner's own disposition (a runner started in the background by a
    shell ignores SIGINT, and its children would inherit that and never see the Ctrl-C)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def photo_views(photo: Path, count: int, seed: int = 0) -> list[Image.Image]:
    """``count`` distinct real photos from one: the whole photo, then seeded crops of 60-100% of each side, every
    other one mirrored. Tests that need many photos of a label use these, so they run without ../shared."""
    import numpy as np
    from PIL import ImageOps

    rng = np.random.default_rng(seed)
    with Image.open(photo) as opened:
        whole = opened.convert("RGB")
    w, h = whole.size
    views = [whole]
    for i in range(1, count):
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        view = whole.crop((x, y, x + cw, y + ch))
        views.append(ImageOps.mirror(view) if i % 2 else view)
    return views


def scores_of(classifier, photo: Path) -> dict[str, float]:
    """One photo file through the classifier's steps (preprocess, predict, postprocess), as the service runs them."""
    from core.images import decode_image

    return classifier.postprocess(classifier.predict(classifier.preprocess(decode_image(photo.read_bytes(), 10**8))))


def http_post(url, body: bytes, content_type="application/json", timeout=60):
    """A real HTTP POST; (status, parsed JSON body), for 2xx and error answers alike."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def phone_photo(path: Path, orientation: int = 6) -> Path:
    """A 12 MP phone photo of the sample pants, ~6 MB: stored as a phone stores a portrait shot (sideways,
    4000x3000, with this EXIF Orientation); sensor-like noise gives it a phone JPEG's size."""
    import numpy as np
    from PIL import Image

    from tests.camera import tagged_jpeg

    with Image.open(SAMPLE) as image:
        upright = image.convert("RGB").resize((3000, 4000), Image.Resampling.BICUBIC)
    noise = np.random.default_rng(0).integers(-16, 17, size=(4000, 3000, 3), dtype=np.int16)
    pixels = np.clip(np.asarray(upright, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    path.write_bytes(tagged_jpeg(Image.fromarray(pixels), orientation))
    return path


def http(
    method: str,
    body: bytes | str = b"",
    content_type: str | None = None,
    query: dict[str, str] | None = None,
    accept: str | None = None,
    **fields: Any,
) -> Request:
    headers = {name: value for name, value in (("Content-Type", content_type), ("Accept", accept)) if value}
    return Request(
        method=method,
        headers=Headers(headers),
        query=query or {},
        body=body.encode() if isinstance(body, str) else body,
        **fields,
    )


def invocation(payload: Any) -> Request:
    return Request.invocation(payload, caller="test")
