"""Classify one image from the command line: python -m cli PATH_OR_URL [--top-k N] [--details].

Prints the same JSON the HTTP endpoint answers (with --details, the answer with its verdict); exits 1 (with the
JSON error) when the request fails, 2 when the model or a setting cannot work.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from core.contract import Request
from core.errors import ModelError
from core.logs import configure_logging
from core.service import Service
from core.settings import Settings

from .quiet import log_level, runtime_notices_dropped

USAGE = """python -m cli [-h] [--top-k N] [--probabilities] [--details] [--manifest FILE] [--verbose] PATH_OR_URL
       python -m cli classify [-h] PATHS_OR_URLS... [--out FILE] [options]  (many photos)"""
EPILOG = """\
many photos: python -m cli classify folders, globs, URLs or a list (--from FILE) -> CSV or JSON Lines, with the
local model or a deployed --endpoint, resumable; see python -m cli classify --help"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cli",
        usage=USAGE,
        description=__doc__.splitlines()[0],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", metavar="PATH_OR_URL", help="an image file, or an http(s) URL")
    p.add_argument("--top-k", type=int, metavar="N", help="only the N best labels, best first")
    p.add_argument("--probabilities", action="store_true", help="softmax the scores of a logits model")
    p.add_argument(
        "--details",
        action="store_true",
        help="the answer with its verdict (clothing, not_sure, not_clothing), top label and clothing distance",
    )
    p.add_argument(
        "--manifest", type=Path, metavar="FILE", help="model manifest (default: MODEL_MANIFEST, else the bundled one)"
    )
    p.add_argument("--verbose", action="store_true", help="the service's JSON log line for the request, on stderr")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as exc:
        return _refuse("configuration_error", str(exc), 2)
    if args.manifest:
        settings = dataclasses.replace(settings, manifest_path=args.manifest)
    payload: dict[str, Any] = {"probabilities": args.probabilities}
    if args.details:  # only when asked: without it the answer is the flat {label: score} scripts read
        payload["details"] = True
    if args.top_k is not None:
        payload["top_k"] = args.top_k
    if args.source.startswith(("http://", "https://")):
        payload["url"] = args.source
    else:
        try:
            payload["image"] = base64.b64encode(Path(args.source).read_bytes()).decode("ascii")
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
            return _refuse("file_error", f"cannot read {args.source}: {getattr(exc, 'strerror', None) or exc}", 1)
    # ERROR: a refused image's answer is printed already, its WARNING line would say it twice; a failure of the
    # service itself (its traceback) is still shown.
    configure_logging(log_level(args.verbose, quiet_level="ERROR"))
    service = Service(settings)
    try:
        with runtime_notices_dropped():
            service.classifier.load()
    except ModelError as exc:  # the model is the operator's: its own message, not "quote the request id"
        return _refuse("configuration_error", str(exc), 2)
    response = service.handle(Request.invocation(payload, caller="cli"))
    print(json.dumps(response.body, indent=2), file=sys.stdout if response.status < 400 else sys.stderr)
    return 0 if response.status < 400 else 1


def _refuse(kind: str, message: str, status: int) -> int:
    print(json.dumps({"error": {"type": kind, "message": message}}), file=sys.stderr)
    return status
