"""`classify --endpoint`: what goes over the wire. Loopback endpoints record every request they get and classify
with the real service: large photos leave upright and scaled within the endpoint's limit (never a platform
error), and credentials never follow a redirect to another host."""

from __future__ import annotations

import base64
import csv
import io
import json

import pytest

from core.limits import FRONT_DOORS, SMALLEST
from tests.cli.test_classify_command import classify
from tests.helpers import SAMPLE, QuietHandler, invocation, phone_photo, serve_on_loopback


class Recorder:
    """A loopback HTTP endpoint: records (method, path, headers, body) of every request, answers with ``answer``."""

    def __init__(self, answer):
        self.requests: list[tuple[str, str, dict, bytes]] = []
        recorder = self

        class Handler(QuietHandler):
            def _handle(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                recorder.requests.append((self.command, self.path, dict(self.headers), body))
                status, headers, payload = answer(self.command, body)
                self.reply(status, payload, headers)

            do_GET = do_POST = _handle

        self.server, base = serve_on_loopback(Handler)
        self.url = base + "/"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def service_answer(door: str | None):
    """The real service behind a front door: GET reports that door's limits (None: an endpoint that won't say)."""
    from core.service import Service

    service = Service()

    def answer(method, body):
        if method == "GET":
            if door is None:
                return 404, {"Content-Type": "text/html"}, b"<h1>Not Found</h1>"
            return 200, {"Content-Type": "application/json"}, json.dumps(service.usage(door)).encode()
        response = service.handle(invocation(json.loads(body)))
        return response.status, {"Content-Type": "application/json"}, response.body_text().encode()

    return answer


@pytest.mark.parametrize("door", ["aws-alb", "aws-rest", None])
def test_a_phone_photo_leaves_upright_scaled_and_within_the_endpoints_limit(door, tmp_path):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    phone_photo(photos / "phone.jpg")  # 12 MP, ~6 MB, stored sideways with tag 6
    (photos / "small.jpg").write_bytes(SAMPLE.read_bytes())
    endpoint = Recorder(service_answer(door))
    try:
        out = tmp_path / "out.csv"
        proc = classify(photos, "--endpoint", endpoint.url, "--out", out)
    finally:
        endpoint.close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {row["label"] for row in csv.DictReader(out.open())} == {"pants"}
    limit = FRONT_DOORS[door].max_json_image_bytes if door else SMALLEST.max_json_image_bytes
    posts = [json.loads(body) for method, _, _, body in endpoint.requests if method == "POST"]
    assert len(posts) == 2
    sent = {len(base64.b64decode(post["image"])): post for post in posts}
    assert SAMPLE.stat().st_size in sent  # within every limit: sent as it is
    scaled = next(base64.b64decode(p["image"]) for size, p in sent.items() if size != SAMPLE.stat().st_size)
    assert len(scaled) <= limit
    with Image.open(io.BytesIO(scaled)) as img:
        assert img.size == (768, 1024)  # upright (portrait) and scaled to the 1,024-pixel long side
    # Every request fits Lambda's 6 MB payload and the smallest front door (an ALB's 1 MB body).
    assert max(len(body) for *_, body in endpoint.requests) < 1_048_576


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_credentials_never_follow_a_redirect_to_another_host(status, tmp_path):
    """The endpoint redirects to another origin: that host gets nothing (no keys, no photo), and each image gets
    an error row that names the new location."""
    other = Recorder(lambda method, body: (200, {"Content-Type": "application/json"}, b'{"pants": 1.0}'))
    endpoint = Recorder(lambda method, body: (status, {"Location": other.url + "steal"}, b""))
    try:
        out = tmp_path / "out.jsonl"
        proc = classify(
            SAMPLE,
            "--endpoint",
            endpoint.url,
            "--api-key",
            "K-secret",
            "--function-key",
            "F-secret",
            "--identity-token",
            "T-secret",
            "--out",
            out,
            "--retries",
            "0",
        )
    finally:
        endpoint.close()
        other.close()
    assert other.requests == []
    assert proc.returncode == 1
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row["error"].startswith("endpoint_redirect:") and other.url in row["error"]
    assert any(headers.get("x-api-key") == "K-secret" for _, _, headers, _ in endpoint.requests)


def test_csv_cells_never_start_a_formula_and_read_back_exactly(tmp_path):
    """OWASP's CSV-injection advice: cells a spreadsheet would run get a leading apostrophe; resuming reads the
    original values back, labels holding the top_k separators and an endpoint's verdict included."""
    from cli.output import Output
    from cli.rows import error_row

    out = tmp_path / "out.csv"
    rows = [
        {
            "path": name,
            "label": "pants",
            "score": 0.9,
            "top_k": [["pants", 0.9], ["a;b:c%", 0.1]],
            "verdict": verdict,
            "clothing_distance": 1.25,
            "error": "",
        }
        for name, verdict in [
            ('=HYPERLINK("http://x")', "clothing"),
            ("+1.jpg", "=1+1"),
            ("-2.jpg", None),
            ("@SUM(A1).jpg", "clothing"),
            ("\tx.jpg", "clothing"),
            ("plain.jpg", "not_sure"),
        ]
    ]
    rows.append(error_row("=bad.jpg", "=cmd|' /C calc'!A0"))
    output = Output(str(out))
    for row in rows:
        output.write(row)
    output.close()
    cells = [cell for line in csv.reader(out.open(newline="")) for cell in line]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t"))], cells
    assert '\'=HYPERLINK("http://x")' in cells and "pants:0.9;a%3Bb%3Ac%25:0.1" in cells and "'=1+1" in cells
    resumed = Output(str(out))  # keeps the answered rows, exactly as they were
    resumed.close()
    assert resumed.done == {row["path"]: {**row, "score": str(row["score"])} for row in rows[:-1]}


def test_the_endpoint_client_never_loads_the_model_stack():
    """`classify --endpoint` is an HTTP client: it imports neither numpy nor the interpreter nor the service."""
    import subprocess
    import sys

    from tests.helpers import ROOT

    probe = (
        "import sys; from cli.bulk import main; from cli.backends import Endpoint; "
        "Endpoint('http://127.0.0.1:9/', {}, 1.0, 0).pool(); "
        "print(sorted(m for m in ('numpy', 'ai_edge_litert', 'tflite_runtime', 'core.service', 'core.model') "
        "if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


@pytest.mark.parametrize("advertised", [0, -1, True, "785664", 1.5])
def test_an_advertised_limit_that_cannot_be_right_is_not_believed(advertised, tmp_path):
    """A GET claiming a limit of 0, -1 or `true` (json's true is Python's 1) would have photos shrunk to nothing:
    the smallest platform's limit is kept, and the photo leaves at the 1,024-pixel long side."""
    from PIL import Image

    from core.service import Service

    usage = Service().usage("aws-rest")
    usage["limits"]["max_image_bytes"]["base64_json"] = advertised
    real = service_answer("aws-rest")

    def answer(method, body):
        if method == "GET":
            return 200, {"Content-Type": "application/json"}, json.dumps(usage).encode()
        return real(method, body)

    phone_photo(tmp_path / "phone.jpg")
    endpoint = Recorder(answer)
    try:
        proc = classify(tmp_path / "phone.jpg", "--endpoint", endpoint.url, "--out", tmp_path / "out.csv")
    finally:
        endpoint.close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    (post,) = [json.loads(body) for method, _, _, body in endpoint.requests if method == "POST"]
    sent = base64.b64decode(post["image"])
    assert len(sent) <= SMALLEST.max_json_image_bytes
    with Image.open(io.BytesIO(sent)) as img:
        assert max(img.size) == 1024


@pytest.mark.parametrize(
    "url, message",
    [
        ("htps://shop.example/api/predict", "must start with https://"),
        ("https://shop.example:123456/api/predict?code=SECRET", "not a URL"),
        ("https:///api/predict?code=SECRET", "no host name"),
        ("shop.example/api/predict", "must start with https://"),
    ],
)
def test_an_endpoint_that_cannot_work_is_refused_once_before_any_work(url, message, tmp_path):
    out = tmp_path / "out.csv"
    proc = classify(SAMPLE, SAMPLE, "--endpoint", url, "--out", out, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and "SECRET" not in proc.stderr


def test_an_endpoint_nobody_answers_at_is_one_line_without_its_key(tmp_path):
    """An Azure URL carries its key (?code=...): an endpoint that refuses connections is refused once, before any
    image, in words (host, port, reason), without the key."""
    from scripts.local_server import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}/api/predict?code=SECRET-KEY-123"  # nothing listens there
    out = tmp_path / "out.csv"
    proc = classify(SAMPLE, SAMPLE.parent / "t-shirt.jpg", "--endpoint", url, "--out", out, timeout=60)
    assert proc.returncode == 2 and not out.exists(), proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot connect to the endpoint: 127.0.0.1:{port}: ") and "refused" in line
    assert "SECRET-KEY-123" not in line and "_WatchedConnection" not in line


def test_evaluate_against_an_endpoint_that_gives_no_labels_is_one_clear_line_before_any_work(tmp_path):
    endpoint = Recorder(lambda method, body: (200, {"Content-Type": "text/html"}, b"<h1>Welcome</h1>"))
    try:
        proc = classify(SAMPLE, "--endpoint", endpoint.url, "--evaluate", "--out", tmp_path / "out.csv")
    finally:
        endpoint.close()
    assert proc.returncode == 2 and "did not give the model's labels" in proc.stderr
    assert "Traceback" not in proc.stderr and [m for m, *_ in endpoint.requests] == ["GET"]
