"""Two of moto's CloudFormation gaps that a deploy onto an existing bucket meets.

The framework's custom resources, run for moto's CloudFormation. moto sends a custom resource's Create request
to its Lambda function, which it can run only in Docker; here the function is the framework's own handler
(node_modules/serverless/lib/plugins/aws/custom-resources/resources/, the code the framework zips and deploys),
run by Node.js on this machine against moto's endpoint, and it answers moto as it answers CloudFormation.
moto sends Create requests only (no Update, no Delete).

moto's ValidateTemplate refuses a template for any cfn-lint finding, warnings included; the framework's custom
resource function states a DependsOn that its GetAtt already implies (cfn-lint's warning W3005), which
CloudFormation accepts. ``errors_only`` makes it refuse cfn-lint's errors only."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

from tests.helpers import ROOT

RESOURCES = ROOT / "node_modules" / "serverless" / "lib" / "plugins" / "aws" / "custom-resources" / "resources"
HANDLERS = {"custom-resource-existing-s3": RESOURCES / "s3" / "handler.js"}

# The handler answers on https://<ResponseURL's host>:443; moto's answer endpoint is its own plain HTTP server.
RUN = """
const http = require('http');
const https = require('https');
const [handlerPath, endpoint, arn] = process.argv.slice(1);
const moto = new URL(endpoint);
https.request = (options, callback) =>
  http.request({ ...options, hostname: moto.hostname, port: moto.port }, callback);
const event = JSON.parse(require('fs').readFileSync(0, 'utf8'));
require(handlerPath)
  .handler(event, { invokedFunctionArn: arn, logStreamName: 'local' })
  .then(() => process.exit(0), (error) => { console.error(error); process.exit(1); });
"""


@contextlib.contextmanager
def run_custom_resources(endpoint: str, credentials: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
    """While active, moto's invocations of the framework's custom resource functions run their handlers; yields
    the list of (event, exit status, output) it ran, for the test to read."""
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.invoke
    ran: list[dict[str, Any]] = []

    def invoke(self: LambdaFunction, body: str, request_headers: Any, response_headers: Any) -> str | bytes:
        handler = next((path for name, path in HANDLERS.items() if self.function_name.endswith(name)), None)
        if handler is None:
            return original(self, body, request_headers, response_headers)
        env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, **credentials)
        proc = subprocess.run(
            ["node", "-e", RUN, str(handler), endpoint, self.function_arn],
            input=body,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        ran.append({"event": json.loads(body), "status": proc.returncode, "output": proc.stdout + proc.stderr})
        return json.dumps({"status": proc.returncode})

    LambdaFunction.invoke = invoke  # type: ignore[method-assign]
    try:
        yield ran
    finally:
        LambdaFunction.invoke = original  # type: ignore[method-assign]


@contextlib.contextmanager
def errors_only() -> Iterator[None]:
    from moto.cloudformation.models import CloudFormationBackend

    original = CloudFormationBackend.validate_template

    def validate_template(self: CloudFormationBackend, template: str) -> list[Any]:
        return [match for match in original(self, template) if match.rule.id.startswith("E")]

    CloudFormationBackend.validate_template = validate_template  # type: ignore[method-assign]
    try:
        yield
    finally:
        CloudFormationBackend.validate_template = original  # type: ignore[method-assign]
