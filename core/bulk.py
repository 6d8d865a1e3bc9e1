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
import functools
import glob
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
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
# --endpoint: a file over the endpoint's limit is sent upright and scaled to this long side, as the page does.
UPLOAD_LONG_SIDE = 1024
UPLOAD_QUALITY = 85


# -- inputs -----------------------------------------------------------------------------------------------
def is_url(item: str) -> bool:
    return item.startswith(("http://", "https://"))


def expand_inputs(items: Iterable[str], list_file: str | None = None) -> list[str]:
    """Files, folders (recursed, images only, sorted), globs and URLs, in order, without repeats."""
    if list_file:
        stream = sys.stdin if list_file == "-" else open(list_file, encoding="utf-8")
        with stream:
            items = list(items) + [line.strip() for line in stream if line.strip() and not line.startswith("#")]
    seen: set[str] = set()
    out: list[str] = []
    for item in items:
        if is_url(item):
            found = [item]
        elif os.path.isdir(item):
            found = sorted(str(p) for p in Path(item).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif any(ch in item for ch in "*?["):
            found = sorted(p for p in glob.glob(item, recursive=True) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        else:
            found = [item]  # a missing file becomes an error row, not a crash
        for one in found:
            if one not in seen:
                seen.add(one)
                out.append(one)
    return out


def payload_for(item: str, top_k: int, max_image_bytes: int | None = None) -> dict[str, Any]:
    """The API request for one input (raises OSError for an unreadable file). A file over ``max_image_bytes`` is
    sent turned upright and scaled down (``fit_for_upload``), so the platform never refuses the request."""
    if is_url(item):
        return {"url": item, "top_k": top_k, "probabilities": True}
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


def row_for(item: str, status: int, body: Any) -> Row:
    if status == 200 and isinstance(body, dict) and body:
        best = next(iter(body.items()))
        return {
            "path": item,
            "label": best[0],
            "score": round(float(best[1]), 6),
            "top_k": [[label, round(float(score), 6)] for label, score in body.items()],
            "error": "",
        }
    error = body.get("error", {}) if isinstance(body, dict) else {}
    message = f"{error.get('type', 'http_' + str(status))}: {error.get('message', body)}"
    return {"path": item, "label": "", "score": "", "top_k": [], "error": message[:500]}


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
        return {"path": item, "label": "", "score": "", "top_k": [], "error": f"file_error: {exc.strerror}"}
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
        try:
            answer = http.request("GET", self.url, headers=self.headers, timeout=10, retries=False, redirect=False)
            self.max_image_bytes = int(json.loads(answer.data)["limits"]["max_image_bytes"]["base64_json"])
        except Exception:  # an older deployment, a gateway's page, no answer: the smallest platform's limit holds
            pass

    def pool(self) -> urllib3.PoolManager:
        import urllib3

        retry = urllib3.Retry(
            total=self.retries,
            connect=self.retries,
            read=self.retries,
            status=self.retries,
            backoff_factor=0.5,
            backoff_max=10,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        return urllib3.PoolManager(maxsize=64, retries=retry, timeout=urllib3.Timeout(connect=10, read=self.timeout))

    def classify(self, http: urllib3.PoolManager, item: str, top_k: int) -> Row:
        import urllib3

        try:
            payload = payload_for(item, top_k, self.max_image_bytes)
        except OSError as exc:
            return {"path": item, "label": "", "score": "", "top_k": [], "error": f"file_error: {exc.strerror}"}
        try:
            # Redirects are not followed: the request carries the caller's keys, which must never reach another host.
            response = http.request(
                "POST", self.url, body=json.dumps(payload).encode(), headers=self.headers, redirect=False
            )
        except urllib3.exceptions.MaxRetryError as exc:
            return {
                "path": item,
                "label": "",
                "score": "",
                "top_k": [],
                "error": f"endpoint_error: gave up after {self.retries} retries: {exc.reason}"[:500],
            }
        if 300 <= response.status < 400:
            return row_for(item, response.status, redirect_error(response.status, response.headers.get("Location")))
        try:
            body = json.loads(response.data)
        except ValueError:
            body = {
                "error": {"type": f"http_{response.status}", "message": response.data[:200].decode(errors="replace")}
            }
        return row_for(item, response.status, body)


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
        self._file = open(self.path, "a", newline="", encoding="utf-8") if self.path else sys.stdout
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


def _read_rows(path: Path, jsonl: bool) -> list[Row]:
    with open(path, newline="", encoding="utf-8") as fh:
        if not jsonl:
            return [_from_csv_row(row) for row in csv.DictReader(fh) if row.get("path")]
        rows = []
        for line in fh:
            try:
                rows.append(json.loads(line))
            except ValueError:  # a line cut short by a kill: that image is done again
                pass
        return rows


def _rewrite_rows(path: Path, jsonl: bool, rows: Iterable[Row]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", newline="", encoding="utf-8") as fh:
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


def _from_csv_row(row: dict[str, str]) -> Row:
    from urllib.parse import unquote

    pairs = [part.rsplit(":", 1) for part in _uncell(row.get("top_k") or "").split(";") if ":" in part]
    top_k = [[unquote(label), float(score)] for label, score in pairs]
    return dict(row, top_k=top_k, **{name: _uncell(row.get(name) or "") for name in TEXT_FIELDS})


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
    finally:
        for future in pending:
            future.cancel()
        executor.shutdown(wait=True, cancel_futures=True)


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
        return 130
    return 0 if summary["errors"] == 0 else 1


def _model_labels(args: argparse.Namespace) -> list[str]:
    if not args.endpoint:
        from .manifest import load_manifest
        from .settings import Settings

        return list(load_manifest(Settings.from_env().manifest_path).labels)
    import urllib3

    answer = urllib3.request("GET", args.endpoint, headers=endpoint_headers(args), timeout=30, redirect=False)
    return json.loads(answer.data)["model"]["labels"]
