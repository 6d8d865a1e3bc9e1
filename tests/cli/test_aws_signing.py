"""`cli classify --endpoint URL --aws-sign` for an IAM-authenticated Function URL (api=url-iam): every request
reaches a loopback stand-in for the URL, which checks its Signature Version 4 by computing it independently
(the published algorithm, not botocore) before passing it on to the real functions-framework server."""

from __future__ import annotations

import csv
import hashlib
import hmac
import os
import subprocess
import sys
import urllib.request
from urllib.parse import quote, unquote, urlsplit

import pytest

from tests.helpers import ROOT, QuietHandler, serve_on_loopback

KEY_ID, SECRET, TOKEN = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token-example"
# Credentials from the environment only: no profile, no instance metadata.
NO_AWS_FILES = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
CREDENTIALS = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN}


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_problem(method: str, target: str, headers, body: bytes, region: str = "us-east-1") -> str | None:
    """Why this request's SigV4 is wrong for service lambda, or None when it is right."""
    auth = headers.get("Authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return f"no SigV4 Authorization: {auth!r}"
    fields = dict(part.strip().split("=", 1) for part in auth.removeprefix("AWS4-HMAC-SHA256 ").split(","))
    amz_date = headers.get("X-Amz-Date", "")
    scope = f"{amz_date[:8]}/{region}/lambda/aws4_request"
    if fields.get("Credential") != f"{KEY_ID}/{scope}":
        return f"credential scope {fields.get('Credential')!r}, expected {KEY_ID}/{scope}"
    signed = fields["SignedHeaders"].split(";")
    if (
        not {"host", "x-amz-date", "x-amz-security-token"} <= set(signed)
        or headers.get("X-Amz-Security-Token") != TOKEN
    ):
        return f"signed headers {signed}"
    parts = urlsplit(target)
    # The spec: the path as received, URI-encoded once more (services other than S3); each query name and value
    # decoded, then URI-encoded ("/" too), sorted.
    pairs = [pair.split("=", 1) + [""] for pair in parts.query.split("&") if pair] if parts.query else []
    query = "&".join(sorted(f"{quote(unquote(k), safe='-_.~')}={quote(unquote(v), safe='-_.~')}" for k, v, *_ in pairs))
    canonical = "\n".join(
        [
            method,
            quote(parts.path or "/", safe="/-_.~"),
            query,
            "".join(f"{name}:{' '.join(headers[name].split())}\n" for name in signed),
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{SECRET}".encode(), amz_date[:8]), region), "lambda"), "aws4_request")
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return None if hmac.compare_digest(expected, fields.get("Signature", "")) else "signature does not match"


class SignedOnly:
    """A Function URL with AuthType AWS_IAM, on loopback: a wrongly signed request gets 403, a right one the
    real function's answer."""

    def __init__(self, upstream: str):
        self.checked: list[tuple[str, str | None]] = []  # (method, problem)
        outer = self

        class Handler(QuietHandler):
            def do_GET(self):
                self._pass(b"")

            def do_POST(self):
                self._pass(self.rfile.read(int(self.headers["Content-Length"])))

            def _pass(self, body):
                problem = sigv4_problem(self.command, self.path, self.headers, body)
                outer.checked.append((self.command, problem))
                if problem:
                    return self._send(403, b'{"Message": "Forbidden"}')
                request = urllib.request.Request(upstream, data=body or None, method=self.command)
                request.add_header("Content-Type", self.headers.get("Content-Type", "application/json"))
                with urllib.request.urlopen(request, timeout=60) as answer:
                    self._send(answer.status, answer.read())

            def _send(self, status, data):
                self.reply(status, data, {"Content-Type": "application/json"})

        self.server, base = serve_on_loopback(Handler)
        self.url = base + "/"


def classify(*args, env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, "-m", "cli", "classify", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**base, **NO_AWS_FILES, "AWS_REGION": "us-east-1", **env},
    )


@pytest.fixture(scope="module")
def function_url(gcp_server):
    url = SignedOnly(gcp_server()[0])
    yield url
    url.server.shutdown()


def test_every_request_is_signed_for_lambda_and_answered(function_url, labelled_photos, tmp_path):
    out = tmp_path / "signed.csv"
    photos = sorted((labelled_photos / "pants").glob("*.jpg"))[:4]
    proc = classify(*photos, "--endpoint", function_url.url, "--aws-sign", "--out", out, env=CREDENTIALS)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader(out.open()))
    assert [r["label"] for r in rows] == ["pants"] * 4 and not any(r["error"] for r in rows)
    assert [problem for _, problem in function_url.checked] == [None] * len(function_url.checked)
    assert sorted(method for method, _ in function_url.checked) == ["GET"] + ["POST"] * 4  # limits, then images


def test_unsigned_requests_are_refused_there(function_url, labelled_photos, tmp_path):
    """The stand-in does refuse: without --aws-sign every image fails with the URL's 403."""
    out = tmp_path / "unsigned.csv"
    photo = sorted((labelled_photos / "pants").glob("*.jpg"))[0]
    proc = classify(photo, "--endpoint", function_url.url, "--out", out, env=CREDENTIALS)
    assert proc.returncode == 1
    assert "403" in next(csv.DictReader(out.open()))["error"]


def test_no_credentials_is_one_clear_line_before_any_request(function_url, labelled_photos):
    seen = len(function_url.checked)
    photo = sorted((labelled_photos / "pants").glob("*.jpg"))[0]
    proc = classify(photo, "--endpoint", function_url.url, "--aws-sign", env={})
    assert proc.returncode == 2 and "error: --aws-sign: no AWS credentials found" in proc.stderr
    assert "Traceback" not in proc.stderr and len(function_url.checked) == seen


def test_a_path_with_spaces_and_accents_and_a_query_with_slashes_is_signed_as_sent(function_url, tmp_path):
    """The URL is signed in the form it is sent: a path with a space and é (percent-encoded on the wire) and a query
    value with "/" (canonicalised as %2F) both verify."""
    out = tmp_path / "signed.csv"
    seen = len(function_url.checked)
    url = function_url.url + "my photos/été?folder=summer/2026&x=1"
    proc = classify(ROOT / "samples" / "pants.jpg", "--endpoint", url, "--aws-sign", "--out", out, env=CREDENTIALS)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert [problem for _, problem in function_url.checked[seen:]] == [None, None]  # GET (limits), then POST
    assert next(csv.DictReader(out.open()))["label"] == "pants"
