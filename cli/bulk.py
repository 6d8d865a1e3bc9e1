"""Classify thousands of photos: ``python -m cli classify PATHS_OR_URLS... [--out FILE]``.

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
import functools
import json
import multiprocessing
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from typing import Any

from .backends import Endpoint, check_endpoint, classify_locally, endpoint_headers, start_local_worker, without_query
from .evaluation import confusion_png, confusion_text, evaluate_rows
from .inputs import expand_inputs
from .output import Output
from .progress import Progress
from .rows import Row
from .signing import SigningError, aws_signer, signable_url


def run_jobs(
    items: Iterable[str], args: argparse.Namespace, endpoint: Endpoint | None, on_row: Callable[[Row], None]
) -> None:
    """Classify ``items`` with the local model, or ``endpoint`` when there is one, calling ``on_row`` in the main
    thread as each one finishes; at most a few jobs queued per worker, so Ctrl-C stops promptly."""
    executor: Executor
    job: Callable[[str], Row]  # one item -> its row, run by the executor
    if endpoint is not None:
        http = endpoint.pool()
        endpoint.learn_limits(http)
        executor = ThreadPoolExecutor(max_workers=args.concurrency)
        job = functools.partial(endpoint.classify, http, top_k=args.top_k)
        window = args.concurrency * 2
    else:
        executor = ProcessPoolExecutor(max_workers=args.workers, initializer=start_local_worker)
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


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m cli classify", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
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
    p.add_argument(
        "--aws-sign",
        action="store_true",
        help="--endpoint is an IAM-authenticated Function URL (api=url-iam): sign requests with your AWS credentials",
    )
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
    if args.endpoint is not None:
        problem = check_endpoint(args.endpoint)
        if problem:
            p.error(problem)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    endpoint = None
    try:  # with --aws-sign, no credentials or no region: said once, before any work
        if args.endpoint:
            endpoint = endpoint_of(args)
        elif args.aws_sign:
            raise SigningError("--aws-sign signs requests to an --endpoint; give one")
    except SigningError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    labels: list[str] = []
    if args.evaluate:  # the model's labels before any work: an endpoint that does not say is one clear line
        try:
            labels = _model_labels(endpoint)
        except LabelsUnknown as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
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
        run_jobs(todo, args, endpoint, on_row)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        seconds = progress.close()
        output.close()
    summary = summarize(rows[len(output.done) :], seconds)
    summary["already_answered"] = len(output.done)
    if args.evaluate:
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


class LabelsUnknown(Exception):
    """--evaluate needs the model's labels: the endpoint's GET did not give them."""


def _model_labels(endpoint: Endpoint | None) -> list[str]:
    if endpoint is None:
        from core.manifest import load_manifest
        from core.settings import Settings

        return list(load_manifest(Settings.from_env().manifest_path).labels)
    import urllib3

    try:
        answer = urllib3.request(
            "GET", endpoint.url, headers=endpoint.headers_for("GET", b""), timeout=30, redirect=False, retries=1
        )
        labels = json.loads(answer.data)["model"]["labels"]
    except (urllib3.exceptions.HTTPError, ValueError, KeyError, TypeError) as exc:
        reason = without_query(str(exc), endpoint.url)[:200]
        raise LabelsUnknown(f"--evaluate: the endpoint's GET did not give the model's labels ({reason})") from None
    if not (isinstance(labels, list) and labels and all(isinstance(label, str) for label in labels)):
        raise LabelsUnknown("--evaluate: the endpoint's GET did not give the model's labels (a list of names)")
    return labels


def endpoint_of(args: argparse.Namespace) -> Endpoint:
    if not args.aws_sign:
        return Endpoint(args.endpoint, endpoint_headers(args), args.timeout, args.retries)
    url = signable_url(args.endpoint)  # the form that is signed is the form that is sent
    return Endpoint(url, endpoint_headers(args), args.timeout, args.retries, sign=aws_signer(url))
