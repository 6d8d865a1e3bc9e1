"""`python -m cli classify`: folders, lists of URLs, output formats, progress without a terminal, resume after
Ctrl-C, --evaluate, and --endpoint against the real functions-framework server behind a proxy that injects
503s and timeouts."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from tests.helpers import ROOT, QuietHandler, as_typed_in_a_terminal, serve_on_loopback


def classify(*args, env=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "cli", "classify", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def summary_of(proc) -> dict:
    text = proc.stderr
    return json.loads(text[text.index("{\n") : text.rindex("}") + 1])


@pytest.fixture(scope="module")
def photos(labelled_photos, tmp_path_factory):
    """12 photos in label folders: 6 pants, 6 t-shirts."""
    root = tmp_path_factory.mktemp("photos")
    for label in ("pants", "t-shirt"):
        (root / label).mkdir()
        for photo in sorted((labelled_photos / label).glob("*.jpg"))[:6]:
            shutil.copy(photo, root / label / photo.name)
    return root


def test_a_folder_to_csv_with_evaluation_and_plain_progress_lines(photos, tmp_path):
    out = tmp_path / "results.csv"
    proc = classify(
        photos, "--out", out, "--workers", "2", "--evaluate", "--confusion-png", tmp_path / "cm.png", "--summary-json"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 12 and {r["error"] for r in rows} == {""}
    assert all(len(r["top_k"].split(";")) == 3 and 0 < float(r["score"]) <= 1 for r in rows)
    assert "12/12 images (100%)" in proc.stderr and "images/s" in proc.stderr  # not a terminal: plain lines
    summary = summary_of(proc)
    assert summary["images"] == 12 and summary["errors"] == 0 and summary["images_per_second"] > 0
    evaluation = summary["evaluation"]
    assert evaluation["images"] == 12 and evaluation["accuracy"] >= 0.75
    assert sum(map(sum, evaluation["confusion"])) == 12 and "true \\ predicted" not in proc.stderr  # once: JSON
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_json_lines_from_a_list_of_urls_and_paths(photos, tmp_path, image_server):
    base, routes = image_server
    pants = sorted((photos / "pants").glob("*.jpg"))[0]
    routes["/bulk-pants.jpg"] = (200, {"Content-Type": "image/jpeg"}, pants.read_bytes())
    listing = tmp_path / "list.txt"
    listing.write_text(f"{base}/bulk-pants.jpg\n{base}/missing.jpg\n{tmp_path / 'nope.jpg'}\n# a comment\n{pants}\n")
    out = tmp_path / "results.jsonl"
    proc = classify("--from", listing, "--out", out, "--workers", "1", env={"FETCH_ALLOW_NETWORKS": "127.0.0.0/8"})
    assert proc.returncode == 1  # some images failed: each is a row with its error
    rows = {row["path"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert len(rows) == 4
    assert rows[f"{base}/bulk-pants.jpg"]["label"] == "pants" == rows[str(pants)]["label"]
    assert rows[f"{base}/missing.jpg"]["error"].startswith("fetch_failed")
    assert rows[str(tmp_path / "nope.jpg")]["error"].startswith("file_error")
    assert rows[str(pants)]["top_k"][0][0] == "pants"


def test_ctrl_c_leaves_a_valid_file_and_the_rerun_finishes_the_rest(labelled_photos, tmp_path):
    out = tmp_path / "results.csv"
    folder = tmp_path / "photos"  # 600: the 120 labelled photos five times, so that Ctrl-C comes mid-run
    for copy in range(5):
        shutil.copytree(labelled_photos, folder / f"copy{copy}")
    total = len([p for p in folder.rglob("*.jpg")])
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "classify", str(folder), "--out", str(out), "--workers", "1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=as_typed_in_a_terminal,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 31):  # header + 30
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr[-2000:]
    assert "run the same command again to resume" in stderr and "Traceback" not in stderr
    first = list(csv.DictReader(out.open()))
    assert 30 <= len(first) < total and all(r["label"] for r in first)  # whole rows only

    again = classify(folder, "--out", out, "--workers", "2", "--summary-json")
    assert again.returncode == 0, again.stderr[-2000:]
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == total == len({r["path"] for r in rows})  # every photo once
    assert summary_of(again)["already_answered"] == len(first)


class FaultProxy:
    """In front of the real server: the first try of every image answers 503, the second hangs past the client's
    timeout, the third is forwarded. A path with 'bad' in its body is forwarded at once (a 4xx: no retry)."""

    def __init__(self, upstream: str):
        self.tries: dict[str, int] = {}
        self.lock = threading.Lock()
        proxy = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = body[-200:].decode(errors="replace")
                with proxy.lock:
                    proxy.tries[key] = tries = proxy.tries.get(key, 0) + 1
                if b'"image": "bm90IGFuIGltYWdl"' not in body:
                    if tries == 1:
                        return self._send(503, b'{"error": {"type": "busy", "message": "injected"}}')
                    if tries == 2:
                        time.sleep(3)  # the client gave up after 1 s
                        return
                request = urllib.request.Request(
                    upstream, data=body, method="POST", headers={"Content-Type": "application/json"}
                )
                try:
                    with urllib.request.urlopen(request, timeout=60) as answer:
                        self._send(answer.status, answer.read())
                except urllib.error.HTTPError as error:
                    self._send(error.code, error.read())

            def _send(self, status, data):
                try:
                    self.reply(status, data, {"Content-Type": "application/json"})
                except OSError:  # the client gave up on this try
                    pass

        self.server, base = serve_on_loopback(Handler)
        self.url = base + "/"


def test_endpoint_mode_retries_503s_and_timeouts_but_not_4xx(photos, tmp_path, gcp_server):
    url, _ = gcp_server()
    proxy = FaultProxy(url)
    try:
        bad = tmp_path / "bad.jpg"
        bad.write_bytes(b"not an image")
        out = tmp_path / "remote.csv"
        proc = classify(
            photos / "pants",
            bad,
            "--endpoint",
            proxy.url,
            "--out",
            out,
            "--concurrency",
            "4",
            "--timeout",
            "1",
            "--retries",
            "3",
            "--summary-json",
            timeout=300,
        )
        rows = {r["path"]: r for r in csv.DictReader(out.open())}
        pants = len(list((photos / "pants").glob("*.jpg")))
        assert len(rows) == pants + 1
        good = [r for p, r in rows.items() if p != str(bad)]
        assert all(r["label"] == "pants" and not r["error"] for r in good), good
        assert rows[str(bad)]["error"].startswith("invalid_image")
        assert [proxy.tries[k] for k in proxy.tries if "bm90IGFuIGltYWdl" in k] == [1]  # a 4xx is not retried
        assert sorted(v for k, v in proxy.tries.items() if "bm90IGFuIGltYWdl" not in k) == [3] * pants
        assert proc.returncode == 1 and summary_of(proc)["errors"] == 1
    finally:
        proxy.server.shutdown()
