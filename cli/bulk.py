"""Classify thousands of photos: python -m cli classify PATHS_OR_URLS... [--out FILE] (options.py says what each
option does).

A run checks everything that would fail every image alike before the first one (options, inputs, the model or
the endpoint, the output file): one line and exit 2. Then it writes each image's row as it is answered, shows
progress, and ends with a short summary (``--summary-json``: one JSON object, for scripts).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, wait

from .inputs import Inputs, ListUnreadable, expand_inputs
from .options import parse_args
from .output import Output, OutputRefused
from .preflight import Backend, Refused, backend_for
from .progress import Progress
from .rows import Row
from .summary import Summary


def run_jobs(items: Iterable[str], backend: Backend, on_row: Callable[[Row], None]) -> None:
    """Classify ``items``, calling ``on_row`` in the main thread as each one finishes; at most a few jobs queued
    per worker, so Ctrl-C stops promptly."""
    pending: set[Future[Row]] = set()
    queue = iter(items)
    try:
        while True:
            while len(pending) < backend.window:
                item = next(queue, None)
                if item is None:
                    break
                pending.add(backend.executor.submit(backend.job, item))
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                on_row(future.result())
    except BaseException:  # Ctrl-C: stop now, not after the jobs running (a slow endpoint, a stuck read)
        for future in pending:
            future.cancel()
        backend.stop(now=True)
        raise
    backend.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        inputs = _inputs(args)
        backend = backend_for(args)
    except (ListUnreadable, Refused) as error:
        return _refuse(str(error))
    except KeyboardInterrupt:  # while the model loads or the endpoint is asked: nothing was written
        print("interrupted before any image", file=sys.stderr)
        return 130
    try:
        output = Output(args.out)
    except OutputRefused as error:
        backend.stop()
        return _refuse(str(error))
    if output.dropped:
        _say_dropped(args.out, output.dropped)
    return _run(args, inputs, backend, output)


def _inputs(args: argparse.Namespace) -> Inputs:
    inputs = expand_inputs(args.inputs, args.list_file)
    if not inputs.items:
        why = "; ".join(_nothing_in(source) for source in inputs.empty) or "the list holds no path or URL"
        raise Refused(f"nothing to classify: {why}")
    for source in inputs.empty:  # the others still run; the exit status says this one gave nothing
        print(f"warning: {_nothing_in(source)}", file=sys.stderr)
    return inputs


def _nothing_in(source: str) -> str:
    if os.path.isdir(source):
        return f"no image files in the folder {source}"
    return f"no image files match {source!r} (patterns are case-sensitive)"


def _run(args: argparse.Namespace, inputs: Inputs, backend: Backend, output: Output) -> int:
    todo = [item for item in inputs.items if item not in output.done]
    rows: list[Row] = []
    progress = Progress(len(todo), len(output.done))
    interrupted = False

    def on_row(row: Row) -> None:
        rows.append(row)
        output.write(row)
        progress.update()

    try:
        run_jobs(todo, backend, on_row)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        seconds = progress.close()
        output.close()
    summary = Summary(rows, list(output.done.values()), seconds, inputs.empty)
    summary.show(args, backend.labels or [])
    if interrupted:
        answered = len(output.done) + len(rows)
        print(f"interrupted: {answered} images answered so far; run the same command again to resume", file=sys.stderr)
        # The output is complete and closed; a request thread still waiting on an endpoint must not hold the
        # process open (Python joins every pool thread at exit).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    return 0 if summary.errors == 0 and not inputs.empty else 1


def _say_dropped(out: str, lines: list[int]) -> None:
    shown = ", ".join(map(str, lines[:10])) + (", ..." if len(lines) > 10 else "")
    print(
        f"warning: {out}: {len(lines)} line{'s' if len(lines) > 1 else ''} not a whole row of this command, "
        f"dropped (line {shown}); an image whose row it was is classified again",
        file=sys.stderr,
    )


def _refuse(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2
