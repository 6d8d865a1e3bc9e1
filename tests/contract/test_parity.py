"""Table-driven: the same requests through the AWS, GCP and Azure adapters, and over real HTTP through
`serverless offline`, give the same status and body."""

import base64
import io
import json
import urllib.error
import urllib.parse
import urllib.request
from types import SimpleNamespace

import pytest
from PIL import Image

from tests.camera import tagged_jpeg
from tests.helpers import ROOT, image_bytes
from tests.serverless import offline_server


def tagged(photo: bytes, orientation: int) -> bytes:
    """The photo as a phone stores it with this EXIF Orientation: sideways, upside down or mirrored, and tagged."""
    with Image.open(io.BytesIO(photo)) as img:
        return tagged_jpeg(img.convert("RGB"), orientation)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


ORIENTATIONS = [
    (f"orientation {n} raw", "POST", lambda p, u, n=n: tagged(p, n), "image/jpeg", {"top_k": "1"}, 200)
    for n in range(1, 9)
] + [
    (
        "orientation 6 base64",
        "POST",
        lambda p, u: json.dumps({"image": b64(tagged(p, 6)), "top_k": 1}).encode(),
        "application/json",
        None,
        200,
    ),
    (
        "orientations 1-8 batch",
        "POST",
        lambda p, u: json.dumps({"images": [b64(tagged(p, n)) for n in range(1, 9)], "top_k": 1}).encode(),
        "application/json",
        None,
        200,
    ),
    ("orientation 8 url", "POST", lambda p, u: json.dumps({"url": u + "-tag8", "top_k": 1}).encode(), None, None, 200),
]

CASES = [
    # name, method, body (or a builder taking (pants bytes, pants url)), content type, query, expected status
    ("url", "POST", lambda p, u: json.dumps({"url": u}).encode(), "application/json", None, 200),
    (
        "base64 top_k",
        "POST",
        lambda p, u: json.dumps({"image": base64.b64encode(p).decode(), "top_k": 3}).encode(),
        "application/json",
        None,
        200,
    ),
    (
        "probabilities",
        "POST",
        lambda p, u: json.dumps({"image": base64.b64encode(p).decode(), "probabilities": True}).encode(),
        "application/json",
        None,
        200,
    ),
    ("raw image", "POST", lambda p, u: p, "image/jpeg", {"top_k": "2"}, 200),
    ("details", "POST", lambda p, u: json.dumps({"url": u, "details": True}).encode(), "application/json", None, 200),
    ("details raw image", "POST", lambda p, u: p, "image/jpeg", {"details": "true", "top_k": "3"}, 200),
    (
        "details batch with a bad item",
        "POST",
        lambda p, u: json.dumps({"images": [b64(p), "aGk="], "details": True, "probabilities": True}).encode(),
        "application/json",
        None,
        200,
    ),
    (
        "batch with a bad item",
        "POST",
        lambda p, u: json.dumps({"images": [base64.b64encode(p).decode(), "aGk="], "top_k": 1}).encode(),
        "application/json",
        None,
        200,
    ),
    (
        "url batch",
        "POST",
        lambda p, u: json.dumps({"urls": [u, u + "-missing"]}).encode(),
        "application/json",
        None,
        200,
    ),
    ("bad json", "POST", lambda p, u: b"{nope", "application/json", None, 400),
    ("no source", "POST", lambda p, u: b"{}", "application/json", None, 400),
    (
        "both sources",
        "POST",
        lambda p, u: json.dumps({"url": u, "image": "aGk="}).encode(),
        "application/json",
        None,
        400,
    ),
    ("top_k too big", "POST", lambda p, u: json.dumps({"url": u, "top_k": 99}).encode(), "application/json", None, 400),
    (
        "metadata url",
        "POST",
        lambda p, u: b'{"url": "http://169.254.169.254/latest/meta-data/"}',
        "application/json",
        None,
        400,
    ),
    ("not an image", "POST", lambda p, u: b'{"image": "aGVsbG8gd29ybGQ="}', "application/json", None, 422),
    ("truncated raw png", "POST", lambda p, u: image_bytes("PNG")[:50], "image/png", None, 422),
    ("xml", "POST", lambda p, u: b"<a/>", "application/xml", None, 415),
    ("fetch 404", "POST", lambda p, u: json.dumps({"url": u + "-missing"}).encode(), "application/json", None, 502),
    ("usage", "GET", lambda p, u: b"", "application/json", None, 200),
    ("options", "OPTIONS", lambda p, u: b"", "application/json", None, 204),
    ("delete", "DELETE", lambda p, u: b"", "application/json", None, 405),
] + [(*case[:3], case[3] or "application/json", *case[4:]) for case in ORIENTATIONS]
# The pants photo's distance is below the band where the ImageNet gate is asked (core/gate.py): no imagenet_gate.
DETAILS_KEYS = ("scores", "label", "confidence", "verdict", "clothing_distance", "threshold", "model")
SHOP, ELSEWHERE = "https://shop.example", "https://elsewhere.example"  # an allowed origin, and another
CORS = [
    # name, method, body, request headers, status, the answer's Access-Control-Allow-Origin (None: not sent)
    ("preflight", "OPTIONS", b"", {"Origin": SHOP, "Access-Control-Request-Method": "POST"}, 204, SHOP),
    ("preflight elsewhere", "OPTIONS", b"", {"Origin": ELSEWHERE, "Access-Control-Request-Method": "POST"}, 204, None),
    ("usage", "GET", b"", {"Origin": SHOP}, 200, SHOP),
    ("predict", "POST", b'{"url": "URL"}', {"Origin": SHOP}, 200, SHOP),
    ("error", "POST", b"{nope", {"Origin": SHOP}, 400, SHOP),
    ("predict elsewhere", "POST", b'{"url": "URL"}', {"Origin": ELSEWHERE}, 200, None),
    ("no origin", "POST", b'{"url": "URL"}', {}, 200, None),
]
# The front door each caller below stands for (core/limits.py): GET's usage JSON reports that door's limits.
DOOR_OF = {"aws": "aws-rest", "aws-offline": "aws-rest", "gcp": "gcp", "azure": "azure"}


@pytest.fixture
def pants(image_server):
    base, routes = image_server
    photo = (ROOT / "samples" / "pants.jpg").read_bytes()
    routes["/parity-pants.jpg"] = (200, {"Content-Type": "image/jpeg"}, photo)
    routes["/parity-pants.jpg-tag8"] = (200, {"Content-Type": "image/jpeg"}, tagged(photo, 8))
    return photo, base + "/parity-pants.jpg"


@pytest.fixture(scope="module")
def offline_url():
    with offline_server(FETCH_ALLOW_NETWORKS="127.0.0.0/8", FETCH_TOTAL_TIMEOUT="3", CORS_ALLOW_ORIGINS=SHOP) as (
        base,
        _,
    ):
        yield base + "/predict"


@pytest.fixture
def aws_offline(offline_url):
    """API Gateway as serverless offline emulates it, over real HTTP."""

    def call(method, body, content_type, query=None, headers=None):
        if content_type.startswith("image/"):  # offline passes binary bodies on only as octet-stream
            content_type = "application/octet-stream"
        url = offline_url + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = {"Content-Type": content_type, **(headers or {})}
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, headers, text = response.status, dict(response.headers), response.read().decode()
        except urllib.error.HTTPError as error:
            status, headers, text = error.code, dict(error.headers), error.read().decode()
        return status, headers, json.loads(text) if text else None

    return call


def lambda_caller(make_event):
    """(method, body, content type, query) -> an event of one AWS front door -> (status, headers, body)."""
    from handlers.aws import lambda_handler

    def call(method, body, content_type, query=None):
        binary = not content_type.startswith(("application/json", "application/xml"))
        event = make_event(
            method,
            base64.b64encode(body).decode() if binary else body.decode(),
            binary,
            content_type,
            {k: str(v) for k, v in (query or {}).items()},
        )
        answer = lambda_handler(event, SimpleNamespace(aws_request_id="r"))
        assert answer["statusDescription"].startswith(str(answer["statusCode"]) + " ")
        headers = answer.get("headers") or {k: v[-1] for k, v in answer["multiValueHeaders"].items()}
        return answer["statusCode"], headers, json.loads(answer["body"]) if answer["body"] else None

    return call


ELB = {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/c/1"}}
LATTICE = {"targetGroupArn": "arn:aws:vpc-lattice:us-east-1:123456789012:targetgroup/tg-1", "region": "us-east-1"}
FRONT_DOORS = {  # the front doors besides API Gateway, each event built as AWS documents it
    "alb": lambda m, b, b64, ct, q: {
        "requestContext": ELB,
        "httpMethod": m,
        "path": "/predict",
        "headers": {"content-type": ct},
        "queryStringParameters": q,
        "body": b,
        "isBase64Encoded": b64,
    },
    "alb-multi-value": lambda m, b, b64, ct, q: {
        "requestContext": ELB,
        "httpMethod": m,
        "path": "/predict",
        "multiValueHeaders": {"content-type": [ct]},
        "multiValueQueryStringParameters": {k: [v] for k, v in q.items()},
        "body": b,
        "isBase64Encoded": b64,
    },
    "lattice-v1": lambda m, b, b64, ct, q: {
        "raw_path": "/predict",
        "method": m,
        "headers": {"content-type": ct},
        "query_string_parameters": q,
        "body": b,
        "is_base64_encoded": b64,
    },
    "lattice-v2": lambda m, b, b64, ct, q: {
        "version": "2.0",
        "path": "/predict",
        "method": m,
        "headers": {"content-type": [ct]},
        "queryStringParameters": q,
        "body": b,
        "isBase64Encoded": b64,
        "requestContext": LATTICE,
    },
}


def header(headers, name):
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


@pytest.mark.parametrize("name, method, body, content_type, query, status", CASES, ids=[c[0] for c in CASES])
def test_same_answer_on_every_cloud(
    fresh_service, aws, aws_offline, gcp, azure, pants, name, method, body, content_type, query, status
):
    data = body(*pants)
    clouds = [("aws", aws), ("aws-offline", aws_offline), ("gcp", gcp), ("azure", azure)]
    clouds += [(f"aws-{door}", lambda_caller(make)) for door, make in FRONT_DOORS.items()]
    if method == "OPTIONS":  # serverless offline answers OPTIONS itself (CORS preflight); API Gateway's ANY does not
        clouds.remove(("aws-offline", aws_offline))
    answers = {cloud: call(method, data, content_type, query) for cloud, call in clouds}
    for cloud, (got_status, headers, got_body) in answers.items():
        assert got_status == status, (cloud, got_body)
        if status in (204, 405):
            assert "POST" in header(headers, "Allow"), cloud
        if status != 204:
            assert header(headers, "Content-Type").startswith("application/json"), cloud
    bodies = {cloud: answer[2] for cloud, answer in answers.items()}
    if name == "usage":  # the same but for the limits of the front door each came through
        doors = {cloud: body.pop("limits")["front_door"] for cloud, body in bodies.items()}
        assert doors == {cloud: DOOR_OF.get(cloud) or "aws-" + cloud.split("-")[1] for cloud in bodies}, doors
    assert all(answer == bodies["aws"] for answer in bodies.values()), bodies
    if status >= 400:
        assert bodies["aws"]["error"]["type"] and bodies["aws"]["error"]["message"]
    if name.startswith("details"):  # the details shape on every door; a failed batch item stays its error
        answer = bodies["aws"][0] if isinstance(bodies["aws"], list) else bodies["aws"]
        assert list(answer) == [*DETAILS_KEYS], answer
        assert answer["label"] == "pants" and answer["verdict"] == "clothing", answer
        assert answer["clothing_distance"] <= answer["threshold"] and 0 < answer["confidence"] <= 1, answer
        if isinstance(bodies["aws"], list):
            assert bodies["aws"][1]["error"]["type"] == "invalid_image", bodies["aws"]
    if name.startswith("orientation"):  # every orientation, mirrored ones included, gives the upright answer
        answers = bodies["aws"] if isinstance(bodies["aws"], list) else [bodies["aws"]]
        assert [list(answer) for answer in answers] == [["pants"]] * len(answers), answers


@pytest.mark.parametrize("name, method, body, headers, status, allowed", CORS, ids=[c[0] for c in CORS])
def test_cors_the_same_on_every_cloud(
    fresh_service, monkeypatch, aws, aws_offline, gcp, azure, pants, name, method, body, headers, status, allowed
):
    """CORS_ALLOW_ORIGINS=https://shop.example: that page may read every answer, errors included; any other
    origin's browser is refused (no Access-Control-Allow-Origin); a preflight says what may be sent."""
    from core.service import get_service

    monkeypatch.setenv("CORS_ALLOW_ORIGINS", SHOP)
    get_service.cache_clear()
    clouds = {"aws": aws, "aws-offline": aws_offline, "gcp": gcp, "azure": azure}
    if method == "OPTIONS":  # serverless offline answers OPTIONS itself; API Gateway passes it on (method ANY)
        del clouds["aws-offline"]
    data = body.replace(b"URL", pants[1].encode())
    answers = {cloud: call(method, data, "application/json", None, headers) for cloud, call in clouds.items()}
    for cloud, (got_status, got_headers, got_body) in answers.items():
        assert got_status == status, (cloud, got_body)
        if cloud == "aws-offline" and allowed is None:
            continue  # serverless offline adds CORS headers of its own for any Origin; API Gateway adds none
        assert header(got_headers, "Access-Control-Allow-Origin") == allowed, (cloud, got_headers)
        assert "Origin" in header(got_headers, "Vary"), cloud  # caches keep each origin's answer apart
        if allowed:
            assert "X-Request-Id" in header(got_headers, "Access-Control-Expose-Headers"), cloud
        if name == "preflight":
            assert "POST" in header(got_headers, "Access-Control-Allow-Methods"), cloud
            assert "content-type" in header(got_headers, "Access-Control-Allow-Headers"), cloud
            assert int(header(got_headers, "Access-Control-Max-Age")) > 0, cloud
        elif name == "preflight elsewhere":
            assert header(got_headers, "Access-Control-Allow-Methods") is None, cloud
    bodies = [answer[2] for answer in answers.values()]
    if name != "usage":  # usage names each front door's limits
        assert all(b == bodies[0] for b in bodies), bodies
