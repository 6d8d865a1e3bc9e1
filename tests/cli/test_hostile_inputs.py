"""`python -m cli classify` never crashes, hangs or loses its place: hostile endpoints on
loopback, crafted folders (FIFOs, symlink loops, names that are not UTF-8, paths past the system's limit), output
files cut short, and Ctrl-C in every mode."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.cli.test_classify_command import classify
from tests.cli.test_endpoint_uploads import Recorder
from tests.helpers import ROOT, SAMPLE, as_typed_in_a_terminal


def rows_of(path) -> list[dict]:
    if str(path).endswith(".jsonl"):
        return [json.loads(line) for line in path.read_text().splitlines()]
    return list(csv.DictReader(path.open(newline="")))


@pytest.mark.parametrize(
    "answer",
    [
        (200, "text/html", b"<html><body>Welcome to nginx!</body></html>"),
        (200, "application/json", b'{"ok": true}'),
        (200, "application/json", b"[1, 2]"),
        (200, "application/json", b'{"pants": "high"}'),
        (200, "application/json", b"{" + b" " * (50 * 1024 * 1024) + b"}"),
        (404, "application/json", b'{"error": "a string, not an object"}'),
    ],
    ids=["html", "not scores", "a list", "text scores", "50 MB", "odd error"],
)
def test_an_answer_that_is_not_scores_is_that_images_error_row(answer, tmp_path):
    status, kind, body = answer
    endpoint = Recorder(lambda method, _: (status, {"Content-Type": kind}, body))
    try:
        out = tmp_path / "out.csv"
        proc = classify(SAMPLE, SAMPLE.parent / "t-shirt.jpg", "--endpoint", endpoint.url, "--out", out, timeout=120)
    finally:
        endpoint.close()
    assert "Traceback" not in proc.stderr and proc.returncode == 1, proc.stderr[-2000:]
    rows = rows_of(out)
    assert len(rows) == 2 and all(row["error"] and not row["label"] for row in rows), rows


def test_a_file_name_that_is_not_utf8_is_classified_and_resumed(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(6):
        name = f"photo{i}.jpg".encode() if i != 4 else b"caf\xe9-\xff.jpg"  # Latin-1, not UTF-8
        (folder / os.fsdecode(name)).write_bytes(SAMPLE.read_bytes())
    out = tmp_path / "out.csv"
    first = classify(folder, "--out", out, "--workers", "1")
    assert first.returncode == 0, first.stderr[-2000:]
    assert len(rows_of_bytes(out)) == 6
    again = classify(folder, "--out", out, "--workers", "1", "--summary-json")
    assert again.returncode == 0 and '"already_answered": 6' in again.stderr, again.stderr[-2000:]
    # No --out: the CSV goes to stdout, the name as its own bytes.
    on_stdout = subprocess.run(
        [sys.executable, "-m", "cli", "classify", folder / os.fsdecode(b"caf\xe9-\xff.jpg"), "--workers", "1"],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
    )
    assert on_stdout.returncode == 0 and b"caf\xe9-\xff.jpg,pants," in on_stdout.stdout, on_stdout.stderr[-2000:]


def rows_of_bytes(path) -> list[list[str]]:
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    return list(csv.reader(text.splitlines()))[1:]


def test_special_files_are_skipped_or_refused_never_read(tmp_path):
    """A FIFO named *.jpg: in a folder it is skipped; named directly it is an error row. Before: a hang."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "real.jpg").write_bytes(SAMPLE.read_bytes())
    os.mkfifo(folder / "pipe.jpg")
    out = tmp_path / "out.jsonl"
    proc = classify(folder, folder / "pipe.jpg", "--out", out, "--workers", "1", timeout=120)
    rows = {row["path"]: row for row in rows_of(out)}
    assert rows[str(folder / "real.jpg")]["label"] == "pants"
    assert rows[str(folder / "pipe.jpg")]["error"] == "file_error: not a regular file"
    assert proc.returncode == 1


def test_a_glob_over_symlink_loops_lists_each_photo_once_and_ends(tmp_path):
    root = tmp_path / "photos"
    (root / "a" / "b").mkdir(parents=True)
    for i, folder in enumerate((root, root / "a", root / "a" / "b")):
        for j in range(3):
            (folder / f"p{i}{j}.jpg").write_bytes(SAMPLE.read_bytes())
    (root / "a" / "b" / "up").symlink_to(root)  # two loops
    (root / "a" / "again").symlink_to(root / "a")
    out = tmp_path / "out.csv"
    started = time.monotonic()
    proc = classify(f"{root}/**/*.jpg", "--out", out, "--workers", "1", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len(rows_of(out)) == 9 and time.monotonic() - started < 60  # was 369 rows, or never ending


def test_a_folder_deeper_than_the_path_limit_is_an_error_row_not_a_crash(tmp_path):
    """Folders nested past PATH_MAX (4,096 bytes): the photos that can be reached are classified, the folder that
    cannot be listed is one error row."""
    root = tmp_path / "deep"
    root.mkdir()
    (root / "top.jpg").write_bytes(SAMPLE.read_bytes())
    here = os.open(root, os.O_RDONLY)
    try:
        for _ in range(20):  # 20 x 250 bytes: made level by level, relative to the last
            os.mkdir("d" * 250, dir_fd=here)
            deeper = os.open("d" * 250, os.O_RDONLY, dir_fd=here)
            os.close(here)
            here = deeper
    finally:
        os.close(here)
    out = tmp_path / "out.jsonl"
    proc = classify(root, "--out", out, "--workers", "1", timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    rows = rows_of(out)
    assert any(row["label"] == "pants" for row in rows)
    assert any(row["error"].startswith("file_error") for row in rows), rows


def test_a_dripping_endpoint_is_cut_at_the_timeout(tmp_path):
    """A server that sends one byte a second: --timeout 2 bounds the whole answer (per-read timeouts alone: 23 s
    at --timeout 3)."""
    import http.server
    import threading

    class Drip(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.end_headers()

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                for byte in b'{"pants": 1.0}' * 100:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(1)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = tmp_path / "out.jsonl"
        started = time.monotonic()
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        proc = classify(SAMPLE, "--endpoint", url, "--out", out, "--timeout", "2", "--retries", "0", timeout=60)
        assert time.monotonic() - started < 12
        assert "within --timeout 2s" in rows_of(out)[0]["error"] and proc.returncode == 1
    finally:
        server.shutdown()


def test_retry_after_is_capped():
    from cli.backends import MAX_RETRY_AFTER, _retry_after

    assert _retry_after("100000", 0) == MAX_RETRY_AFTER == 30
    assert _retry_after("3", 0) == 3 and _retry_after(None, 2) == 2.0 and _retry_after("soon", 0) == 0.5


def start(args, tmp_path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "classify", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=as_typed_in_a_terminal,
    )


@pytest.mark.parametrize("mode", ["local, two workers", "endpoint answering 429, Retry-After: 100000"])
def test_ctrl_c_stops_every_mode_within_two_seconds_with_a_valid_file(mode, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(400):
        (folder / f"p{i:03}.jpg").write_bytes(SAMPLE.read_bytes())
    out = tmp_path / "out.csv"
    endpoint = None
    if mode.startswith("local"):
        args = [folder, "--out", out, "--workers", "2"]
    else:
        endpoint = Recorder(lambda method, _: (429, {"Retry-After": "100000", "Content-Type": "application/json"}, b""))
        args = [folder, "--out", out, "--endpoint", endpoint.url]
    proc = start(args, tmp_path)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # started: rows coming (local) or requests waiting (endpoint)
            if (endpoint and len(endpoint.requests) > 4) or (out.exists() and out.read_text().count("\n") > 10):
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        proc.wait(timeout=30)
        assert time.monotonic() - started < 2.5, time.monotonic() - started
        assert proc.returncode == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        if endpoint:
            endpoint.close()
    header = list(csv.reader(out.open(newline="")))[0]
    assert header == "path,label,score,top_k,verdict,clothing_distance,error".split(",")


@pytest.mark.parametrize(
    "name, damage",
    [
        ("csv cut inside a cell", lambda text: text[: text.rindex("\n", 0, len(text) - 1) + 10]),
        ("csv cut inside top_k", lambda text: text[: text.rindex(";") + 3]),
        ("jsonl line holding a list", lambda text: text + "[1, 2]\n"),
        ("jsonl cut inside a row", lambda text: text[:-20]),
    ],
)
def test_a_damaged_last_line_is_dropped_and_redone(name, damage, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(3):
        (folder / f"p{i}.jpg").write_bytes(SAMPLE.read_bytes())
    out = tmp_path / ("out.jsonl" if name.startswith("jsonl") else "out.csv")
    assert classify(folder, "--out", out, "--workers", "1", "--top-k", "3").returncode == 0
    out.write_text(damage(out.read_text()))
    again = classify(folder, "--out", out, "--workers", "1", "--top-k", "3")
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr[-2000:]
    rows = rows_of(out)
    assert len(rows) == 3 and all(row["label"] == "pants" for row in rows)
    top_k = [row["top_k"] if isinstance(row["top_k"], list) else row["top_k"].split(";") for row in rows]
    assert all(len(labels) == 3 for labels in top_k), top_k


def test_a_glob_lists_what_python_glob_lists_where_there_is_no_loop(tmp_path, monkeypatch):
    import glob

    from cli.inputs import glob_images

    for folder in ("", "a", "a/b", "c"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "p.jpg").write_bytes(b"x")
        (tmp_path / folder / "notes.txt").write_text("not an image")
    monkeypatch.chdir(tmp_path)
    for pattern in ("**/*.jpg", "a/**/*.jpg", "*/*.jpg", "a/*/p.jpg", f"{tmp_path}/**/*.jpg"):
        assert sorted(glob_images(pattern)) == sorted(glob.glob(pattern, recursive=True)), pattern
