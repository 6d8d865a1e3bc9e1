"""Classify thousands of photos: ``python -m core classify PATHS_OR_URLS... [--out FILE]``.

Inputs: files, folders (recursed), globs, URLs, and ``-`` or ``--from FILE`` for a list (one per line). Each
image is classified by the local model in worker processes (one interpreter each, all cores by default) or,
with ``--endpoint URL``, by a deployed function (bounded concurrency, retries with backoff on 429/5xx,
timeouts and dropped connections; never on other 4xx). Rows go to ``--out`` (CSV or JSON Lines, by suffix)
as they finish, so an interrupted run leaves a valid file; rerunning with the same ``--out`` skips every image
that already has an answer and tries the failed ones again. ``--evaluate`` reads the true label from each
image's folder name and adds accuracy, per-label accuracy and a confusion matrix.
"""

from __future__ import annotations

import argparse
import base64
import csv
import fnmatch
import functools
import glob
import io
import json
import multiprocessing
import os
import stat
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .confusion import confusion_png
from .images import IMAGE_SUFFIXES
from .limits import SMALLEST

if TYPE_CHECKING:
    import urllib3

Row = dict[str, Any]  # one output row: FIELDS
FIELDS = ("path", "label", "score", "top_k", "error")
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRY_AFTER = 30.0  # seconds: an endpoint's Retry-After is followed up to this (one said 100000)
MAX_ANSWER_BYTES = 1024 * 1024  # an answer is ~300 bytes of scores; a larger one is not an answer
# --endpoint: a file over the endpoint's limit is sent upright and scaled to this long side, as the page does.
UPLOAD_LONG_SIDE = 1024
UPLOAD_QUALITY = 85


# -- inputs -----------------------------------------------------------------------------------------------
def is_url(item: str) -> bool:
    return item.startswith(("http://", "https://"))


def expand_inputs(items: Iterable[str], list_file: str | None = None) -> list[str]:
    """Files, folders (recursed, images only, sorted), globs and URLs, in order, without repeats."""
    if list_file:
        stream = sys.stdin if list_file == "-" else open(list_file, encoding="utf-8", errors="surrogateescape")
        with stream:
            items = list(items) + [line.strip() for line in stream if line.strip() and not line.startswith("#")]
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        if is_url(item):
            found = [item]
        elif os.path.isdir(item):
            found = sorted(walk_images(item))
        elif any(ch in item for ch in "*?["):
            found = sorted(glob_images(item))
        else:
            found = [item]  # a missing file becomes an error row, not a crash
        for one in found:
            if one not in seen:
                seen.add(one)
                out.append(one)
    return out


def walk_images(root: str) -> Iterator[str]:
    """The image files under ``root``: regular files only (a FIFO or device named *.jpg would block a read
    forever); symbolic links followed, but no folder visited twice, so a link loop ends. A folder that cannot be
    listed (no permission, a path over the system's limit) is yielded itself: its row says why."""
    visited: set[tuple[int, int]] = set()
    unreadable: list[str] = []
    for folder, subfolders, files in os.walk(root, followlinks=True, onerror=lambda e: unreadable.append(e.filename)):
        try:
            info = os.stat(folder)
        except OSError:
            unreadable.append(folder)
            subfolders[:] = []
            continue
        if (info.st_dev, info.st_ino) in visited:
            subfolders[:] = []
            continue
        visited.add((info.st_dev, info.st_ino))
        for name in files:
            path = os.path.join(folder, name)
            if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES and _is_regular_file(path):
                yield path
    yield from (str(folder) for folder in unreadable)


def glob_images(pattern: str) -> list[str]:
    """Image files matching a glob. ``**`` walks with ``walk_images`` (glob's own recursion follows a link loop
    until paths hit the length limit: 9 photos became 369 rows); ``*``, ``?`` and ``[...]`` use glob."""
    if "**" not in pattern:
        return [
            p for p in glob.glob(pattern) if os.path.splitext(p)[1].lower() in IMAGE_SUFFIXES and _is_regular_file(p)
        ]
    parts = pattern.split(os.sep)
    first_magic = next(i for i, part in enumerate(parts) if any(ch in part for ch in "*?["))
    root = os.sep.join(parts[:first_magic]) or ("/" if pattern.startswith(os.sep) else ".")
    flat = pattern.replace("**" + os.sep, "")  # ** also matches no folder at all
    return [p for p in walk_images(root) if fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, flat)]


def _is_regular_file(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def payload_for(item: str, top_k: int, max_image_bytes: int | None = None) -> dict[str, Any]:
    """The API request for one input (raises OSError for an unreadable file). A file over ``max_image_bytes`` is
    sent turned upright and scaled down (``fit_for_upload``), so the platform never refuses the request."""
    if is_url(item):
        return {"url": item, "top_k": top_k, "probabilities": True}
    if not stat.S_ISREG(os.stat(item).st_mode):  # reading a FIFO or a device would wait forever
        raise OSError(0, "not a regular file")
    data = Path(item).read_bytes()
    if max_image_bytes is not None and len(data) > max_image_bytes:
        data = fit_for_upload(data, max_image_bytes)
    return {"image": base64.b64encode(data).decode("ascii"), "top_k": top_k, "probabilities": True}


def fit_for_upload(data: bytes, max_bytes: int) -> bytes:
    """A photo as a JPEG of at most ``max_bytes``: upright (EXIF orientation), long side UPLOAD_LONG_SIDE or less.
    Bytes that are not a decodable image are returned as they are: the endpoint says what is wrong with them."""
    import io

    from PIL import Image, UnidentifiedImageError

    from .images import upright

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (UPLOAD_LONG_SIDE, UPLOAD_LONG_SIDE))  # a JPEG decodes straight at about that size
            photo = upright(img).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return data
    side, quality = UPLOAD_LONG_SIDE, UPLOAD_QUALITY
    while True:
        scaled = photo.copy()
        scaled.thumbnail((side, side), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        scaled.save(out, "JPEG", quality=quality)
        if out.tell() <= max_bytes or side <= 256:
            return out.getvalue()
        side, quality = side * 3 // 4, max(60, quality - 10)


def error_row(item: str, message: str) -> Row:
    return {"path": item, "label": "", "score": "", "top_k": [], "error": message[:500]}


def is_scores(body: object) -> bool:
    """The API's answer for one image: {label: number}, at least one."""
    return (
        isinstance(body, dict)
        and bool(body)
        and all(isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in body.items())
    )


def row_for(item: str, status: int, body: Any) -> Row:
    if status == 200 and is_scores(body):
        best = next(iter(body.items()))
        return {
            "path": item,
            "label": best[0],
            "score": round(float(best[1]), 6),
            "top_k": [[label, round(float(score), 6)] for label, score in body.items()],
            "error": "",
        }
    if status == 200:  # a gateway's page, another service, a truncated answer: never a crash
        return error_row(item, f"endpoint_error: HTTP 200 without label scores: {str(body)[:200]}")
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    return error_row(item, f"{error.get('type', 'http_' + str(status))}: {error.get('message', body)}")


# -- workers: the local model ------------------------------------------------------------------------------
_SERVICE: Any = None  # the worker process's Service


def _start_local_worker() -> None:
    global _SERVICE
    import logging
    import signal

    from .service import Service

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool cleanly
    logging.getLogger("core").setLevel(logging.ERROR)  # one JSON line per image would drown the progress bar
    _SERVICE = Service()


def classify_locally(item: str, top_k: int) -> Row:
    try:
        payload = payload_for(item, top_k)
    except OSError as exc:
        return error_row(item, f"file_error: {exc.strerror}")
    assert _SERVICE is not None, "the worker's initializer creates the service"
    response = _SERVICE.handle_payload(payload, cloud="bulk")
    return row_for(item, response.status, response.body)


# -- workers: a deployed endpoint -----------------------------------------------------------------------
@dataclass
class Endpoint:
    url: str
    headers: dict[str, str]
    timeout: float
    retries: int
    # The largest image a JSON request may carry: what the endpoint's usage JSON says, else the smallest
    # platform's (core/limits.py).
    max_image_bytes: int = SMALLEST.max_json_image_bytes

    def learn_limits(self, http: urllib3.PoolManager) -> None:
        """Ask the endpoint (GET) how large an image its front door lets through; keep the default if it won't say."""
        from .fetch import Watchdog

        try:
            with Watchdog(time.monotonic() + 10) as watchdog:
                answer = http.request(
                    "GET", self.url, headers=self.headers, retries=False, redirect=False, preload_content=False
                )
                data = _read_answer(answer, watchdog.deadline)
            self.max_image_bytes = int(json.loads(data or b"")["limits"]["max_image_bytes"]["base64_json"])
        except Exception:  # an older deployment, a gateway's page, no answer: the smallest platform's limit holds
            pass

    def pool(self) -> urllib3.PoolManager:
        from .fetch import watched_pool_manager

        return watched_pool_manager(maxsize=64, retries=False, timeout=self.timeout)

    def classify(self, http: urllib3.PoolManager, item: str, top_k: int) -> Row:
        """One image through the endpoint: retried on 429/5xx, timeouts and dropped connections (never on other
        4xx), with backoff or the endpoint's Retry-After (at most MAX_RETRY_AFTER seconds)."""
        try:
            payload = json.dumps(payload_for(item, top_k, self.max_image_bytes)).encode()
        except OSError as exc:
            return error_row(item, f"file_error: {exc.strerror}")
        failure, wait_seconds = "", 0.0
        for attempt in range(self.retries + 1):
            time.sleep(wait_seconds)
            outcome = self._attempt(http, payload)
            if isinstance(outcome, tuple):
                status, headers, data = outcome
                if status not in RETRY_STATUSES:
                    return _row_from_answer(item, status, headers, data)
                failure, wait_seconds = f"HTTP {status}", _retry_after(headers.get("Retry-After"), attempt)
            else:
                failure, wait_seconds = outcome, _retry_after(None, attempt)
        return error_row(item, f"endpoint_error: gave up after {self.retries} retries: {failure}")

    def _attempt(self, http: urllib3.PoolManager, payload: bytes) -> tuple[int, Any, bytes | None] | str:
        """One POST, within ``timeout`` seconds from sending to the answer's last byte (a watchdog shuts the
        connection then: a server dripping a byte a second cannot outlast it). (status, headers, body or None
        when over MAX_ANSWER_BYTES), or why it failed."""
        import urllib3

        from .fetch import Watchdog

        with Watchdog(time.monotonic() + self.timeout) as watchdog:
            try:
                # Redirects are not followed: the request carries the caller's keys, which must never reach
                # another host.
                response = http.request(
                    "POST", self.url, body=payload, headers=self.headers, redirect=False, preload_content=False
                )
                try:
                    data = _read_answer(response, watchdog.deadline)
                finally:
                    response.release_conn()
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                return f"no whole answer within --timeout {self.timeout:g}s" if watchdog.fired else str(exc)[:200]
        if watchdog.fired:
            return f"no whole answer within --timeout {self.timeout:g}s"
        return response.status, response.headers, data


def _retry_after(value: str | None, attempt: int) -> float:
    """Seconds before the next try: the endpoint's Retry-After (seconds or a date), else exponential backoff."""
    import urllib3

    if value:
        try:
            return min(max(urllib3.Retry().parse_retry_after(value), 0.0), MAX_RETRY_AFTER)
        except urllib3.exceptions.InvalidHeader:
            pass
    return min(0.5 * 2**attempt, 10.0)


def _row_from_answer(item: str, status: int, headers: Any, data: bytes | None) -> Row:
    if 300 <= status < 400:
        return row_for(item, status, redirect_error(status, headers.get("Location")))
    if data is None:
        return error_row(item, f"endpoint_error: an answer over {MAX_ANSWER_BYTES} bytes is not label scores")
    try:
        body = json.loads(data)
    except ValueError:
        text = data[:200].decode(errors="replace")
        body = text if status == 200 else {"error": {"type": f"http_{status}", "message": text}}
    return row_for(item, status, body)


def _read_answer(response: urllib3.BaseHTTPResponse, deadline: float) -> bytes | None:
    """The answer's body, or None past MAX_ANSWER_BYTES (read no further). read1: one socket read per call, so
    the deadline is checked however slowly the bytes come."""
    data = bytearray()
    while chunk := response.read1(64 * 1024):
        data += chunk
        if len(data) > MAX_ANSWER_BYTES:
            return None
        if time.monotonic() > deadline:
            raise TimeoutError("the answer took longer than the deadline")
    return bytes(data)


def redirect_error(status: int, location: str | None) -> dict[str, Any]:
    return {
        "error": {
            "type": "endpoint_redirect",
            "message": f"the endpoint answered HTTP {status} (to {str(location)[:200]}); redirects are not followed, "
            "so that keys are never sent to another host: give the final URL as --endpoint",
        }
    }


def endpoint_headers(args: argparse.Namespace) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if args.api_key:
        headers["x-api-key"] = args.api_key  # AWS API Gateway (--param="apiKey=true")
    if args.function_key:
        headers["x-functions-key"] = args.function_key  # Azure Functions
    if args.identity_token:
        headers["Authorization"] = f"Bearer {args.identity_token}"  # GCP: gcloud auth print-identity-token
    return headers


# -- output ---------------------------------------------------------------------------------------------------
class Output:
    """CSV or JSON Lines, written a row at a time; on resume, the answered rows are kept and the failed dropped."""

    def __init__(self, path: str | None) -> None:
        self.path = Path(path) if path else None
        self.jsonl = self.path is not None and self.path.suffix.lower() in (".jsonl", ".ndjson")
        self.done: dict[str, Row] = {}
        if self.path is not None and self.path.exists():
            kept = [row for row in _read_rows(self.path, self.jsonl) if not row.get("error")]
            self.done = {row["path"]: row for row in kept}
            _rewrite_rows(self.path, self.jsonl, kept)
        # surrogateescape: a file name that is not UTF-8 is written (and read back on resume) as its own bytes.
        self._file = open(self.path, "a", newline="", encoding=ENCODING, errors=ERRORS) if self.path else sys.stdout
        self._csv = csv.DictWriter(self._file, FIELDS)
        if not self.jsonl and (self.path is None or self.path.stat().st_size == 0):
            self._csv.writeheader()

    def write(self, row: Row) -> None:
        if self.jsonl:
            self._file.write(json.dumps(row) + "\n")
        else:
            self._csv.writerow(_csv_row(row))
        self._file.flush()

    def close(self) -> None:
        if self.path:
            self._file.close()


ENCODING, ERRORS = "utf-8", "surrogateescape"


def _read_rows(path: Path, jsonl: bool) -> list[Row]:
    """The rows of an earlier run that are whole and well-formed. Every row is written with its line end and
    flushed, so a last line without one was cut short by a kill: it is dropped (that image is done again), as is
    any line that is not a row of ours (a foreign or hand-edited file)."""
    text = path.read_bytes().decode(ENCODING, ERRORS)
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    if jsonl:
        candidates = []
        for line in text.splitlines():
            try:
                candidates.append(json.loads(line))
            except ValueError:
                pass
    else:
        try:
            candidates = [_from_csv_row(row) for row in csv.DictReader(io.StringIO(text, newline=""))]
        except csv.Error:
            candidates = []
    return [row for row in candidates if _is_row(row)]


def _is_row(row: object) -> bool:
    if not isinstance(row, dict) or set(row) != set(FIELDS) or not isinstance(row["path"], str) or not row["path"]:
        return False
    if row["error"]:
        return isinstance(row["error"], str)
    top_k = row["top_k"]
    return (
        isinstance(row["label"], str)
        and isinstance(top_k, list)
        and bool(top_k)
        and all(isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], (int, float)) for pair in top_k)
        and top_k[0][0] == row["label"]
    )


def _rewrite_rows(path: Path, jsonl: bool, rows: Iterable[Row]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", newline="", encoding=ENCODING, errors=ERRORS) as fh:
        writer = csv.DictWriter(fh, FIELDS)
        if not jsonl:
            writer.writeheader()
        for row in rows:
            if jsonl:
                fh.write(json.dumps(row) + "\n")
            else:
                writer.writerow(_csv_row(row))
    os.replace(temporary, path)


# A cell starting with one of these is a formula to a spreadsheet (OWASP, "CSV Injection"): it gets a leading
# apostrophe, which spreadsheets show as text and _uncell removes when a run resumes.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TEXT_FIELDS = ("path", "label", "error")
# top_k is "label:score;label:score": these characters in a label are percent-escaped, so no cell is ambiguous.
TOP_K_ESCAPES = {"%": "%25", ";": "%3B", ":": "%3A"}


def _cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _uncell(text: str) -> str:
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text


def _csv_row(row: Row) -> Row:
    def escape(label: str) -> str:
        return "".join(TOP_K_ESCAPES.get(ch, ch) for ch in label)

    top_k = ";".join(f"{escape(label)}:{score}" for label, score in row["top_k"])
    return dict(row, top_k=_cell(top_k), **{name: _cell(str(row[name])) for name in TEXT_FIELDS})


def _from_csv_row(row: dict[str | None, Any]) -> Row | None:
    """A CSV row as written by _csv_row, or None when it is not one (missing or extra cells, a bad top_k)."""
    from urllib.parse import unquote

    if None in row or any(not isinstance(row.get(name), str) for name in FIELDS):
        return None
    try:
        pairs = [part.rsplit(":", 1) for part in _uncell(row["top_k"]).split(";") if part]
        top_k = [[unquote(label), float(score)] for label, score in pairs]
    except ValueError:
        return None
    cells = {name: row[name] for name in FIELDS}
    return {**cells, "top_k": top_k, **{name: _uncell(cells[name]) for name in TEXT_FIELDS}}


# -- progress ------------------------------------------------------------------------------------------------
class Progress:
    """tqdm's bar (rate, ETA) on a terminal; a plain line every few seconds otherwise (logs, CI)."""

    def __init__(self, total: int, already: int, every: float = 5.0) -> None:
        self.total, self.count, self.every = total, 0, every
        self.started = self.last = time.monotonic()
        self.bar: Any = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="img", dynamic_ncols=True, file=sys.stderr)
        elif already:
            print(f"resuming: {already} images already answered", file=sys.stderr, flush=True)

    def update(self) -> None:
        self.count += 1
        if self.bar is not None:
            self.bar.update(1)
            return
        now = time.monotonic()
        if now - self.last >= self.every or self.count == self.total:
            self.last = now
            rate = self.count / max(now - self.started, 1e-9)
            eta = (self.total - self.count) / rate if rate else 0
            print(
                f"{self.count}/{self.total} images ({100 * self.count / max(self.total, 1):.0f}%), "
                f"{rate:.1f} images/s, ETA {eta:.0f}s",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> float:
        if self.bar is not None:
            self.bar.close()
        return time.monotonic() - self.started


# -- the run ---------------------------------------------------------------------------------------------------
def run_jobs(items: Iterable[str], args: argparse.Namespace, on_row: Callable[[Row], None]) -> None:
    """Classify ``items``, calling ``on_row`` in the main thread as each one finishes; at most a few jobs queued
    per worker, so Ctrl-C stops promptly."""
    executor: Executor
    job: Callable[[str], Row]  # one item -> its row, run by the executor
    if args.endpoint:
        endpoint = Endpoint(args.endpoint, endpoint_headers(args), args.timeout, args.retries)
        http = endpoint.pool()
        endpoint.learn_limits(http)
        executor = ThreadPoolExecutor(max_workers=args.concurrency)
        job = functools.partial(endpoint.classify, http, top_k=args.top_k)
        window = args.concurrency * 2
    else:
        executor = ProcessPoolExecutor(max_workers=args.workers, initializer=_start_local_worker)
        job = functools.partial(classify_locally, top_k=args.top_k)  # a module-level function: it pickles
        window = args.workers * 4
    pending: set[Future[Row]] = set()
    queue = iter(items)
    try:
        while True:
            while len(pending) < window:
                item = next(queue, None)
                if item is None:
                    break
                pending.add(executor.submit(job, item))
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                on_row(future.result())
    except BaseException:  # Ctrl-C: stop now, not after the jobs running (a slow endpoint, a stuck read)
        for future in pending:
            future.cancel()
        for child in multiprocessing.active_children():  # the local workers
            child.terminate()
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)


def summarize(rows: Sequence[Row], seconds: float) -> dict[str, Any]:
    answered = [r for r in rows if not r["error"]]
    return {
        "images": len(rows),
        "answered": len(answered),
        "errors": len(rows) - len(answered),
        "seconds": round(seconds, 2),
        "images_per_second": round(len(rows) / seconds, 1) if seconds else None,
        "per_label": dict(Counter(r["label"] for r in answered).most_common()),
    }


def evaluate_rows(rows: Iterable[Row], labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy against each image's folder name, where that name is one of the model's labels."""
    known = [
        (Path(r["path"]).parent.name, r["label"])
        for r in rows
        if not r["error"] and Path(r["path"]).parent.name in labels
    ]
    index = {label: i for i, label in enumerate(labels)}
    confusion = [[0] * len(labels) for _ in labels]
    for truth, predicted in known:
        confusion[index[truth]][index[predicted]] += 1
    per_label = {
        label: round(confusion[i][i] / sum(confusion[i]), 4) for i, label in enumerate(labels) if sum(confusion[i])
    }
    correct = sum(confusion[i][i] for i in range(len(labels)))
    return {
        "images": len(known),
        "accuracy": round(correct / len(known), 4) if known else None,
        "per_label_accuracy": per_label,
        "labels": list(labels),
        "confusion": confusion,
    }


def confusion_text(result: dict[str, Any]) -> str:
    labels = result["labels"]
    width = max(len(label) for label in labels) + 1
    lines = ["true \\ predicted".ljust(width) + " ".join(label[:6].rjust(6) for label in labels)]
    lines += [
        label.ljust(width) + " ".join(str(n).rjust(6) for n in row)
        for label, row in zip(labels, result["confusion"], strict=False)
    ]
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m core classify", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("inputs", nargs="*", help="image files, folders, globs or URLs; '-' reads a list from stdin")
    p.add_argument("--from", dest="list_file", help="a file listing paths or URLs, one per line")
    p.add_argument("--out", help="CSV, or JSON Lines for .jsonl (default: CSV on stdout); rerun to resume")
    p.add_argument("--top-k", type=int, default=3, help="labels kept per image (default 3)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="local processes (default: all cores)")
    p.add_argument("--endpoint", help="classify with a deployed function at this URL instead of the local model")
    p.add_argument("--concurrency", type=int, default=8, help="--endpoint: requests at once (default 8)")
    p.add_argument("--retries", type=int, default=5, help="--endpoint: retries on 429/5xx/timeouts (default 5)")
    p.add_argument("--timeout", type=float, default=60.0, help="--endpoint: seconds per request (default 60)")
    p.add_argument("--api-key", help="--endpoint on AWS with an API key (x-api-key)")
    p.add_argument("--function-key", help="--endpoint on Azure (x-functions-key)")
    p.add_argument("--identity-token", help="--endpoint on GCP: `gcloud auth print-identity-token`")
    p.add_argument("--evaluate", action="store_true", help="true labels from folder names: accuracy, confusion")
    p.add_argument("--confusion-png", help="with --evaluate: write the confusion matrix as a PNG")
    args = p.parse_args(argv)
    if "-" in args.inputs:
        args.inputs.remove("-")
        args.list_file = "-"
    if not args.inputs and not args.list_file:
        p.error("give images, folders, globs or URLs, or a list with --from FILE or -")
    for name in ("top_k", "workers", "concurrency"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    items = expand_inputs(args.inputs, args.list_file)
    output = Output(args.out)
    todo = [item for item in items if item not in output.done]
    rows: list[Row] = list(output.done.values())
    progress = Progress(len(todo), len(output.done))
    interrupted = False

    def on_row(row: Row) -> None:
        rows.append(row)
        output.write(row)
        progress.update()

    try:
        run_jobs(todo, args, on_row)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        seconds = progress.close()
        output.close()
    summary = summarize(rows[len(output.done) :], seconds)
    summary["already_answered"] = len(output.done)
    if args.evaluate:
        labels = _model_labels(args)
        summary["evaluation"] = evaluate_rows(rows, labels)
        print(confusion_text(summary["evaluation"]), file=sys.stderr)
        if args.confusion_png and summary["evaluation"]["images"]:
            evaluation = summary["evaluation"]
            title = f"accuracy {evaluation['accuracy']:.2%} on {evaluation['images']} images"
            confusion_png(evaluation["labels"], evaluation["confusion"], title, args.confusion_png)
    print(json.dumps(summary, indent=2), file=sys.stderr)
    if interrupted:
        print(f"interrupted: {len(rows)} images answered so far; run the same command again to resume", file=sys.stderr)
        # The output is complete and closed; a request thread still waiting on an endpoint must not hold the
        # process open (Python joins every pool thread at exit).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    return 0 if summary["errors"] == 0 else 1


def _model_labels(args: argparse.Namespace) -> list[str]:
    if not args.endpoint:
        from .manifest import load_manifest
        from .settings import Settings

        return list(load_manifest(Settings.from_env().manifest_path).labels)
    import urllib3

    answer = urllib3.request("GET", args.endpoint, headers=endpoint_headers(args), timeout=30, redirect=False)
    return json.loads(answer.data)["model"]["labels"]
