"""Classify one image from the command line: ``python -m cli PATH_OR_URL [--top-k N]``.

Prints the same JSON the HTTP endpoint answers; exits 1 (with the JSON error) when the request fails.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from core.http import Request
from core.service import Service, configure_logging
from core.settings import Settings


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="an image file, or an http(s) URL")
    parser.add_argument("--top-k", type=int, help="only the N best labels, best first")
    parser.add_argument("--probabilities", action="store_true", help="softmax the scores of a logits model")
    parser.add_argument("--manifest", type=Path, help="model manifest (default: model/clothing-model.json)")
    args = parser.parse_args(argv)

    try:
        settings = Settings.from_env()
    except ValueError as exc:
        print(json.dumps({"error": {"type": "configuration_error", "message": str(exc)}}), file=sys.stderr)
        return 2
    if args.manifest:
        settings = dataclasses.replace(settings, manifest_path=args.manifest)
    payload: dict[str, Any] = {"probabilities": args.probabilities}
    if args.top_k is not None:
        payload["top_k"] = args.top_k
    if args.source.startswith(("http://", "https://")):
        payload["url"] = args.source
    else:
        try:
            payload["image"] = base64.b64encode(Path(args.source).read_bytes()).decode("ascii")
        except OSError as exc:
            print(
                json.dumps({"error": {"type": "file_error", "message": f"cannot read {args.source}: {exc.strerror}"}}),
                file=sys.stderr,
            )
            return 1
    configure_logging(settings.log_level)
    response = Service(settings).handle(Request.invocation(payload, caller="cli"))
    print(json.dumps(response.body, indent=2), file=sys.stdout if response.status < 400 else sys.stderr)
    return 0 if response.status < 400 else 1
