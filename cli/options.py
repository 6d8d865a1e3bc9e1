"""The bulk command's options: each checked when it is parsed, so a value that cannot work is a usage error
(exit 2) before any photo is read or any output opened."""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable

from .backends import check_endpoint

DESCRIPTION = """\
Classify thousands of photos: python -m cli classify PATHS_OR_URLS... [--out FILE]

Inputs: files, folders (recursed), globs, URLs, and - or --from FILE for a list (one path or URL per line). A
name that exists is that file, even with * ? [ ] in it; only a name that is not a file is a glob pattern. Each
image is classified by the local model in worker processes (one interpreter each, all cores by default) or, with
--endpoint URL, by a deployed function (bounded concurrency, retries with backoff on 429/5xx, timeouts and
dropped connections; never on other 4xx). Rows go to --out (CSV or JSON Lines, by suffix) as they finish, so an
interrupted run leaves a valid file; rerunning with the same --out skips every image that already has an answer
and tries the failed ones again (one run at a time per file). --evaluate reads the true label from each image's
folder name and adds accuracy, per-label accuracy and a confusion matrix.

Exit status: 0 every image answered; 1 some images failed (each is a row with its error) or a pattern or folder
held no images; 2 a mistake that would fail every image (an option, the model, an unreachable endpoint, the
output), said in one line before any work; 130 interrupted (rerun to resume).
"""
MAX_TIMEOUT = 3600.0  # seconds: more is no deadline at all, and the socket layer refuses far larger values


def at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        return value

    return parse


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT):
        raise argparse.ArgumentTypeError(f"must be more than 0 and at most {MAX_TIMEOUT:g} seconds, not {text}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cli classify", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = p.add_argument
    add("inputs", nargs="*", metavar="PATH_OR_URL", help="files, folders, globs or URLs; - reads a list from stdin")
    add("--from", dest="list_file", metavar="FILE", help="a file listing paths or URLs, one per line (not patterns)")
    add("--out", metavar="FILE", help="CSV, or JSON Lines for .jsonl (default: CSV on stdout); rerun to resume")
    add("--top-k", type=at_least(1), default=3, metavar="N", help="labels kept per image (default 3)")
    add("--workers", type=at_least(1), default=os.cpu_count() or 1, metavar="N", help="local processes (default: all)")
    add("--manifest", metavar="FILE", help="the local model's manifest (default: MODEL_MANIFEST, else the bundled one)")
    add("--endpoint", metavar="URL", help="classify with a deployed function at this URL instead of the local model")
    add("--concurrency", type=at_least(1), default=8, metavar="N", help="--endpoint: requests at once (default 8)")
    add(
        "--retries",
        type=at_least(0),
        default=5,
        metavar="N",
        help="--endpoint: retries on 429/5xx/timeouts (default 5)",
    )
    add("--timeout", type=seconds, default=60.0, metavar="S", help="--endpoint: seconds per attempt (default 60)")
    add("--api-key", metavar="KEY", help="--endpoint on AWS with an API key (x-api-key)")
    add("--function-key", metavar="KEY", help="--endpoint on Azure (x-functions-key)")
    add("--identity-token", metavar="TOKEN", help="--endpoint on GCP: gcloud auth print-identity-token")
    add(
        "--aws-sign",
        action="store_true",
        help="--endpoint is an IAM-authenticated Function URL (api=url-iam): sign requests with your AWS credentials",
    )
    add("--evaluate", action="store_true", help="true labels from folder names: accuracy, confusion matrix")
    add("--confusion-png", metavar="FILE", help="with --evaluate: write the confusion matrix as a PNG")
    add("--summary-json", action="store_true", help="the end-of-run summary as one JSON object on stderr")
    add("--verbose", action="store_true", help="local model: the service's JSON log line per image, on stderr")
    return p


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = parser()
    args = p.parse_args(argv)
    if "-" in args.inputs:
        args.inputs.remove("-")
        args.list_file = "-"
    if not args.inputs and not args.list_file:
        p.error("give images, folders, globs or URLs, or a list with --from FILE or -")
    problem = _problem(args)
    if problem:
        p.error(problem)
    return args


def _problem(args: argparse.Namespace) -> str | None:
    """Why these options cannot work together, or None."""
    if args.endpoint is not None:
        problem = check_endpoint(args.endpoint)
        if problem:
            return problem
        if args.manifest:
            return "--manifest is the local model's; with --endpoint the deployment's own model answers"
    elif args.aws_sign:
        return "--aws-sign signs requests to an --endpoint; give one"
    if args.confusion_png and not args.evaluate:
        return "--confusion-png draws --evaluate's confusion matrix; add --evaluate"
    if args.out is not None:
        problem = writable_place("--out", args.out)
        if problem:
            return problem
    if args.confusion_png:
        return writable_place("--confusion-png", args.confusion_png)
    return None


def writable_place(option: str, path: str) -> str | None:
    """Why a file cannot be written at ``path`` (a folder, no such parent folder), or None."""
    if not path:
        return f"{option} needs a file name"
    if os.path.isdir(path):
        return f"{option} {path} is a folder; name a file in it"
    parent = os.path.dirname(os.path.realpath(path)) or "."
    if not os.path.isdir(parent):
        return f"{option} {path}: the folder {os.path.dirname(path) or parent} does not exist"
    return None
