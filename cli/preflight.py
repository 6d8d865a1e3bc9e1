"""Who answers a run's images, checked before the first image: a mistake that would fail every image alike (a
model that does not load, a setting out of range, more labels asked than the model has, an endpoint nobody
answers at) is one line and exit 2, not an error row per image."""

from __future__ import annotations

import argparse
import functools
import multiprocessing
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .backends import (
    Endpoint,
    Unreachable,
    check_local_model,
    classify_locally,
    dig,
    endpoint_headers,
    start_local_worker,
)
from .quiet import log_level
from .rows import Row
from .signing import SigningError, aws_signer, signable_url


class Refused(Exception):
    """The run cannot work: its one line (exit 2)."""


@dataclass
class Backend:
    """An executor and the job it runs per image (one item -> its row), at most ``window`` queued at once."""

    executor: Executor
    job: Callable[[str], Row]
    window: int
    labels: list[str] | None = None  # the model's labels, where known (the local model; an endpoint that says)
    local: bool = False

    def stop(self, now: bool = False) -> None:
        if now:  # Ctrl-C: the local workers, a request stuck on a slow endpoint
            for child in multiprocessing.active_children():
                child.terminate()
        self.executor.shutdown(wait=not now, cancel_futures=True)


def backend_for(args: argparse.Namespace) -> Backend:
    """The run's backend, checked; raises Refused."""
    backend = endpoint_backend(args) if args.endpoint else local_backend(args)
    try:
        _check_top_k(args.top_k, backend.labels)
        if args.evaluate and not backend.labels:
            raise Refused("--evaluate: the endpoint's GET did not give the model's labels")
    except Refused:
        backend.stop()
        raise
    return backend


def local_backend(args: argparse.Namespace) -> Backend:
    from core.settings import Settings

    try:
        Settings.from_env()
    except ValueError as exc:
        raise Refused(str(exc)) from None
    executor = ProcessPoolExecutor(
        max_workers=args.workers,
        initializer=start_local_worker,
        # Every outcome is a row (a failure's request id included): no log line per image unless asked for.
        initargs=(args.manifest, log_level(args.verbose, quiet_level="CRITICAL")),
    )
    backend = Backend(executor, functools.partial(classify_locally, top_k=args.top_k), args.workers * 4, local=True)
    try:
        problem, labels = executor.submit(check_local_model).result()
    except BaseException:
        backend.stop(now=True)
        raise
    if problem:
        backend.stop()
        raise Refused(problem)
    backend.labels = labels
    return backend


def endpoint_backend(args: argparse.Namespace) -> Backend:
    try:
        endpoint = endpoint_of(args)
    except SigningError as error:
        raise Refused(str(error)) from None
    http = endpoint.pool()
    try:
        usage = endpoint.probe(http)
    except Unreachable as error:
        raise Refused(str(error)) from None
    endpoint.learn_limits(usage)
    job = functools.partial(endpoint.classify, http, top_k=args.top_k)
    backend = Backend(ThreadPoolExecutor(max_workers=args.concurrency), job, args.concurrency * 2)
    backend.labels = _labels_in(usage)
    return backend


def endpoint_of(args: argparse.Namespace) -> Endpoint:
    if not args.aws_sign:
        return Endpoint(args.endpoint, endpoint_headers(args), args.timeout, args.retries)
    url = signable_url(args.endpoint)  # the form that is signed is the form that is sent
    return Endpoint(url, endpoint_headers(args), args.timeout, args.retries, sign=aws_signer(url))


def _labels_in(usage: dict[str, Any] | None) -> list[str] | None:
    labels = dig(usage, "model", "labels")
    if isinstance(labels, list) and labels and all(isinstance(label, str) for label in labels):
        return labels
    return None


def _check_top_k(top_k: int, labels: list[str] | None) -> None:
    if labels is not None and top_k > len(labels):
        raise Refused(f"--top-k {top_k}: the model has {len(labels)} labels; give at most --top-k {len(labels)}")
