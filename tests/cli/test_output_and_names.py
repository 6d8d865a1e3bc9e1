"""`python -m cli classify`'s output file and the names it reads: one run at a time per file, every row read
back (long cells, a byte-order mark, a line that is not a row), outputs that are not regular files, names with
glob characters or a leading apostrophe, and lists with NUL bytes or in UTF-16."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time

import pytest

from tests.cli.test_classify_command import classify, summary_of
from tests.cli.test_endpoint_uploads import Recorder
from tests.helpers import ROOT, SAMPLE

HEADER = "path,label,score,top_k,verdict,clothing_distance,error"


def rows_of(path) -> list[dict]:
    csv.field_size_limit(1 << 24)  # a row of a pasted data: URL
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")))


def photos(folder, count: int) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    made = [folder / f"p{i:03}.jpg" for i in range(count)]
    for path in made:
        path.write_bytes(SAMPLE.read_bytes())
    return made


def slow_endpoint(seconds: float) -> Recorder:
    """Answers every POST with scores after ``seconds``: a run of N photos at --concurrency 1 lasts N times that."""

    def answer(method, _):
        if method == "GET":
            return 404, {"Content-Type": "text/plain"}, b"no usage here"
        time.sleep(seconds)
        return 200, {"Content-Type": "application/json"}, b'{"pants": 0.9, "shorts": 0.1}'

    return Recorder(answer)


def test_a_second_run_on_the_same_output_is_refused_and_the_first_keeps_every_row(tmp_path):
    made = photos(tmp_path / "photos", 200)
    out = tmp_path / "out.csv"
    endpoint = slow_endpoint(0.03)  # the first run lasts 6 s or more
    args = [tmp_path / "photos", "--out", out, "--endpoint", endpoint.url, "--concurrency", "1", "--top-k", "2"]
    first = subprocess.Popen(
        [sys.executable, "-m", "cli", "classify", *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 5):
            time.sleep(0.05)
        second = classify(*args, timeout=120)
        assert first.poll() is None, "the first run ended before the second started: use more photos"
        _, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
        endpoint.close()
    assert second.returncode == 2 and "is being written by another run" in second.stderr, second.stderr[-2000:]
    assert first.returncode == 0, stderr[-2000:]
    rows = rows_of(out)
    assert sorted(row["path"] for row in rows) == sorted(map(str, made))  # every row it wrote, each once


def test_resume_reads_a_cell_longer_than_the_csv_limit_and_a_byte_order_mark(tmp_path):
    """A pasted data: URL in the list (a path no file has: an error row of 300 kB) and a file saved with a BOM
    by a spreadsheet: the answered rows are kept, not erased."""
    made = photos(tmp_path / "photos", 2)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{path}\n" for path in made) + "data:image/jpeg;base64," + "A" * 300_000 + "\n")
    out = tmp_path / "out.csv"
    assert classify("--from", listing, "--out", out, "--workers", "1").returncode == 1
    again = classify("--from", listing, "--out", out, "--workers", "1", "--summary-json")
    assert again.returncode == 1 and summary_of(again)["already_answered"] == 2, again.stderr[-2000:]
    assert summary_of(again)["images"] == 1  # only the error row is tried again
    out.write_bytes(b"\xef\xbb\xbf" + out.read_bytes())
    third = classify("--from", listing, "--out", out, "--workers", "1", "--summary-json")
    assert summary_of(third)["already_answered"] == 2, third.stderr[-2000:]
    assert sorted(row["path"] for row in rows_of(out) if row["label"]) == sorted(map(str, made))


def test_a_line_that_is_not_a_row_is_dropped_alone_and_said(tmp_path):
    made = photos(tmp_path / "photos", 3)
    out = tmp_path / "out.csv"
    assert classify(tmp_path / "photos", "--out", out, "--workers", "1").returncode == 0
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:2] + ["not,a,row\r\n"] + lines[2:]))
    again = classify(tmp_path / "photos", "--out", out, "--workers", "1", "--summary-json")
    assert again.returncode == 0 and summary_of(again)["already_answered"] == 3, again.stderr[-2000:]
    assert "1 line not a whole row of this command, dropped (line 3)" in again.stderr
    assert sorted(row["path"] for row in rows_of(out)) == sorted(map(str, made))


def test_a_file_that_is_not_ours_is_refused_not_rewritten(tmp_path):
    out = tmp_path / "inventory.csv"
    out.write_text("sku,name\n1,blue dress\n")
    proc = classify(SAMPLE, "--out", out, "--workers", "1", timeout=60)
    assert proc.returncode == 2 and "is not this command's output" in proc.stderr, proc.stderr
    assert out.read_text() == "sku,name\n1,blue dress\n"


def test_out_dev_stdout_into_a_pipe_and_into_a_file(tmp_path):
    piped = subprocess.run(
        [sys.executable, "-m", "cli", "classify", SAMPLE, "--out", "/dev/stdout", "--workers", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,  # reading /dev/stdout back waited forever
    )
    assert piped.returncode == 0 and piped.stdout.splitlines()[0] == HEADER, piped.stderr[-2000:]
    assert piped.stdout.splitlines()[1].startswith(f"{SAMPLE},pants,")
    target = tmp_path / "rows.csv"
    with open(target, "w") as stdout:
        proc = subprocess.run(
            [sys.executable, "-m", "cli", "classify", SAMPLE, "--out", "/dev/stdout", "--workers", "1"],
            cwd=ROOT,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [row["label"] for row in rows_of(target)] == ["pants"]
    assert os.path.islink("/dev/stdout")


def test_a_symlinked_output_stays_a_link_and_its_target_is_resumed(tmp_path):
    made = photos(tmp_path / "photos", 2)
    (tmp_path / "results").mkdir()
    target = tmp_path / "results" / "run.csv"
    link = tmp_path / "latest.csv"
    link.symlink_to(target)
    assert classify(made[0], "--out", link, "--workers", "1").returncode == 0
    again = classify(*made, "--out", link, "--workers", "1", "--summary-json")
    assert again.returncode == 0 and summary_of(again)["already_answered"] == 1, again.stderr[-2000:]
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert [row["path"] for row in rows_of(target)] == [str(made[0]), str(made[1])]


def test_a_name_with_brackets_is_that_file_as_an_argument_and_in_a_list(tmp_path):
    named = tmp_path / "dress[red].jpg"
    named.write_bytes(SAMPLE.read_bytes())
    out = tmp_path / "out.csv"
    proc = classify(named, "--out", out, "--workers", "1")
    assert proc.returncode == 0 and [row["path"] for row in rows_of(out)] == [str(named)], proc.stderr[-2000:]
    listing = tmp_path / "list.txt"
    listing.write_text(f"{named}\n{tmp_path}/*.jpg\n")  # a line is a path, never a pattern
    listed = classify("--from", listing, "--out", tmp_path / "listed.jsonl", "--workers", "1")
    assert listed.returncode == 1
    rows = {row["path"]: row for row in map(json.loads, (tmp_path / "listed.jsonl").read_text().splitlines())}
    assert rows[str(named)]["label"] == "pants" and rows[f"{tmp_path}/*.jpg"]["error"].startswith("file_error")
    pattern = classify(f"{tmp_path}/dress[r]ed*.jpg", "--workers", "1")  # a name no file has: a pattern
    assert pattern.returncode == 2 and "no image files match" in pattern.stderr  # [r] is a class: no match
    matched = classify(f"{tmp_path}/*[[]red].jpg", "--workers", "1")
    assert matched.returncode == 0 and f"{named},pants," in matched.stdout, matched.stderr[-2000:]


def test_a_nul_byte_in_a_list_is_that_lines_error_row(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_bytes(f"{SAMPLE}\n".encode() + b"bad\x00name.jpg\n")
    out = tmp_path / "out.csv"
    proc = classify("--from", listing, "--out", out, "--workers", "1", timeout=60)
    assert "Traceback" not in proc.stderr and proc.returncode == 1, proc.stderr[-2000:]
    rows = {row["path"]: row for row in rows_of(out)}
    assert rows[str(SAMPLE)]["label"] == "pants"
    assert rows["bad\x00name.jpg"]["error"] == "file_error: a file name cannot hold a NUL byte"
    again = classify("--from", listing, "--out", out, "--workers", "1", "--summary-json", timeout=60)
    assert summary_of(again)["already_answered"] == 1, again.stderr[-2000:]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_a_list_saved_by_windows_is_read(encoding, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_bytes(f"{SAMPLE}\r\n{SAMPLE.parent / 't-shirt.jpg'}\r\n".encode(encoding))  # with its BOM
    out = tmp_path / "out.csv"
    proc = classify("--from", listing, "--out", out, "--workers", "1", timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [row["label"] for row in rows_of(out)] == ["pants", "t-shirt"]


def test_a_name_starting_with_an_apostrophe_is_not_classified_again(tmp_path):
    for name in ("'-back.jpg", "'front.jpg", "-side.jpg"):
        (tmp_path / name).write_bytes(SAMPLE.read_bytes())
    env = {"PYTHONPATH": str(ROOT)}
    options = ["--out", "out.csv", "--workers", "1", "--summary-json"]
    run = [sys.executable, "-m", "cli", "classify", *options, "--", "'-back.jpg", "'front.jpg", "-side.jpg"]
    first = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert first.returncode == 0, first.stderr[-2000:]
    again = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert summary_of(again)["already_answered"] == 3 and summary_of(again)["images"] == 0, again.stderr[-2000:]
    cells = [line.split(",")[0] for line in (tmp_path / "out.csv").read_text().splitlines()[1:]]
    assert cells == ["''-back.jpg", "''front.jpg", "'-side.jpg"]  # a spreadsheet shows the names as they are


def test_every_cell_reads_back_as_written():
    from cli.resume import cell, uncell

    for text in ("", "'", "''", "'-back.jpg", "'=x", "=x", "-x", "x'", "plain.jpg", "@", "\tx"):
        assert uncell(cell(text)) == text, text
        assert not cell(text).startswith(("=", "+", "-", "@", "\t", "\r")), text
