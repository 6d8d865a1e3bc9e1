"""The Lambda Runtime API on loopback, as little of it as a runtime client needs (the documented calls: next
invocation, its response or error, an init error; SnapStart's restore/next and restore error), so that the
handler runs under the real runtime client (``python -m awslambdaric handlers.aws.lambda_handler``) and its
output is what Lambda would record."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import ROOT, QuietHandler, serve_on_loopback

PREFIX = "/2018-06-01/runtime"
FUNCTION = "clothing-classifier-dev-predict"
ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"
TRACE = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"


@dataclass
class Outcome:
    kind: str  # "response" or "error"
    body: bytes


@dataclass
class RuntimeApi:
    events: queue.Queue = field(default_factory=queue.Queue)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    init_errors: list[bytes] = field(default_factory=list)
    done: threading.Condition = field(default_factory=threading.Condition)
    # SnapStart: the runtime asks for restore/next once its before-snapshot hooks ran; the answer (the restore)
    # waits until the test calls restore()
    snapshot_taken: threading.Event = field(default_factory=threading.Event)
    restoring: threading.Event = field(default_factory=threading.Event)
    restore_errors: list[bytes] = field(default_factory=list)

    def restore(self) -> None:
        self.restoring.set()

    def serve(self) -> http.server.ThreadingHTTPServer:
        api = self

        class Handler(QuietHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if self.path == f"{PREFIX}/restore/next":
                    api.snapshot_taken.set()
                    api.restoring.wait()
                    return self._reply(200, b"")
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404, b"{}")
                request_id, event = api.events.get()  # the runtime client waits here between invocations
                self._reply(
                    200,
                    event,
                    {
                        "Lambda-Runtime-Aws-Request-Id": request_id,
                        "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 29_000),
                        "Lambda-Runtime-Invoked-Function-Arn": ARN,
                        "Lambda-Runtime-Trace-Id": TRACE,
                    },
                )

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.removeprefix(PREFIX).strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_errors.append(body)
                elif parts == ["restore", "error"]:
                    api.restore_errors.append(body)
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    with api.done:
                        api.outcomes[parts[1]] = Outcome(parts[2], body)
                        api.done.notify_all()
                else:
                    return self._reply(404, b"{}")
                self._reply(202, b'{"status": "OK"}')

            def _reply(self, status, body, headers=None):
                self.reply(status, body, {"Content-Type": "application/json", **(headers or {})})

        return serve_on_loopback(Handler)[0]

    def invoke(self, event: object, timeout: float = 60) -> tuple[str, Outcome]:
        """One invocation, as Lambda would hand it to the runtime: (request id, what the runtime posted back)."""
        request_id = str(uuid.uuid4())
        self.events.put((request_id, json.dumps(event).encode()))
        with self.done:
            if not self.done.wait_for(lambda: request_id in self.outcomes, timeout):
                raise AssertionError(f"no response to {request_id} in {timeout}s")
        return request_id, self.outcomes[request_id]


@contextlib.contextmanager
def lambda_runtime(log_format: str = "Text", **env: str):
    """The function under awslambdaric against a loopback Runtime API: yields (api, path of its stdout)."""
    api = RuntimeApi()
    server = api.serve()
    out = Path(tempfile.mkstemp(prefix="lambda-runtime-", suffix=".log")[1])
    environment = {
        **os.environ,
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/29/[$LATEST]0123456789abcdef",
        "AWS_LAMBDA_LOG_FORMAT": log_format,
        "LAMBDA_TASK_ROOT": str(ROOT),
        "METRICS": "emf",  # as serverless.yml sets it
        **env,
    }
    with open(out, "w") as stdout:
        proc = subprocess.Popen(
            [sys.executable, "-m", "awslambdaric", "handlers.aws.lambda_handler"],
            cwd=ROOT,
            env=environment,
            stdout=stdout,
            stderr=subprocess.STDOUT,
        )
    try:
        yield api, out
    finally:
        proc.kill()
        proc.wait(timeout=10)
        server.shutdown()
        out.unlink(missing_ok=True)  # the log is read inside the block; leave nothing in the temp folder
