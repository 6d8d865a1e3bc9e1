"""AWS Signature Version 4 for an IAM-authenticated Function URL (``--param="api=url-iam"``): every request the
bulk client sends is signed for the service ``lambda`` with the caller's AWS credentials, found as the AWS CLI
finds them (environment, profile, SSO, instance role), by botocore. A request is signed on each try, since a
signature carries its time and expires."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

# https://<url-id>.lambda-url.<region>.on.aws/
FUNCTION_URL_HOST = re.compile(r"^[a-z0-9]+\.lambda-url\.([a-z0-9-]+)\.on\.aws$")

Signer = Callable[[str, str, bytes, dict[str, str]], dict[str, str]]


class SigningError(Exception):
    """No credentials, or no region to sign for: said before any request is sent."""


def signable_url(url: str) -> str:
    """The URL in the one form that is both signed and sent: its path and each query name and value
    percent-encoded as SigV4 canonicalises them (only ``A-Z a-z 0-9 - _ . ~`` as they are; ``/`` too in the path).
    Signing one spelling and sending another (an HTTP client encoding a space or ``é`` in the path on the way out)
    makes Lambda compute another signature: 403 for every request."""
    parts = urlsplit(url)
    path = quote(unquote(parts.path or "/"), safe="/-_.~")
    pairs = [pair.partition("=") for pair in parts.query.split("&") if pair]
    query = "&".join(f"{quote(unquote(k), safe='-_.~')}={quote(unquote(v), safe='-_.~')}" for k, _, v in pairs)
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def region_of(url: str, fallback: str | None) -> str:
    match = FUNCTION_URL_HOST.match(urlsplit(url).hostname or "")
    if match:
        return match.group(1)
    if fallback:
        return fallback
    raise SigningError(f"--aws-sign: {url} is not a Function URL (<id>.lambda-url.<region>.on.aws): set AWS_REGION")


def aws_signer(url: str) -> Signer:
    """sign(method, url, body, headers) -> the headers with SigV4's Authorization, X-Amz-Date (and the session
    token of temporary credentials)."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = botocore.session.get_session()
    credentials = session.get_credentials()
    if credentials is None:
        raise SigningError("--aws-sign: no AWS credentials found (aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID)")
    region = region_of(url, os.environ.get("AWS_REGION") or session.get_config_variable("region"))

    def sign(method: str, target: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        request = AWSRequest(method=method, url=target, data=body, headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "lambda", region).add_auth(request)
        return dict(request.headers.items())

    return sign
