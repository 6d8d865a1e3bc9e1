"""Table-driven: the same requests through the AWS, GCP and Azure adapters give the same status and body."""
import base64
import json

import pytest

from tests.conftest import image_bytes

CASES = [
    # name, method, body (or a builder taking (pants bytes, pants url)), content type, query, expected status
    ("url", "POST", lambda p, u: json.dumps({"url": u}).encode(), "application/json", None, 200),
    ("base64 top_k", "POST", lambda p, u: json.dumps({"image": base64.b64encode(p).decode(), "top_k": 3}).encode(),
     "application/json", None, 200),
    ("probabilities", "POST", lambda p, u: json.dumps({"image": base64.b64encode(p).decode(),
                                                        "probabilities": True}).encode(),
     "application/json", None, 200),
    ("raw image", "POST", lambda p, u: p, "image/jpeg", {"top_k": "2"}, 200),
    ("batch with a bad item", "POST", lambda p, u: json.dumps({"images": [base64.b64encode(p).decode(), "aGk="],
                                                                 "top_k": 1}).encode(),
     "application/json", None, 200),
    ("url batch", "POST", lambda p, u: json.dumps({"urls": [u, u + "-missing"]}).encode(), "application/json", None,
     200),
    ("bad json", "POST", lambda p, u: b"{nope", "application/json", None, 400),
    ("no source", "POST", lambda p, u: b"{}", "application/json", None, 400),
    ("both sources", "POST", lambda p, u: json.dumps({"url": u, "image": "aGk="}).encode(), "application/json",
     None, 400),
    ("top_k too big", "POST", lambda p, u: json.dumps({"url": u, "top_k": 99}).encode(), "application/json", None,
     400),
    ("metadata url", "POST", lambda p, u: b'{"url": "http://169.254.169.254/latest/meta-data/"}',
     "application/json", None, 400),
    ("not an image", "POST", lambda p, u: b'{"image": "aGVsbG8gd29ybGQ="}', "application/json", None, 422),
    ("truncated raw png", "POST", lambda p, u: image_bytes("PNG")[:50], "image/png", None, 422),
    ("xml", "POST", lambda p, u: b"<a/>", "application/xml", None, 415),
    ("fetch 404", "POST", lambda p, u: json.dumps({"url": u + "-missing"}).encode(), "application/json", None, 502),
    ("usage", "GET", lambda p, u: b"", "application/json", None, 200),
    ("delete", "DELETE", lambda p, u: b"", "application/json", None, 405),
]


@pytest.fixture
def pants(image_server, pants_photo):
    base, routes = image_server
    routes["/parity-pants.jpg"] = (200, {"Content-Type": "image/jpeg"}, pants_photo.read_bytes())
    return pants_photo.read_bytes(), base + "/parity-pants.jpg"


@pytest.mark.parametrize("name, method, body, content_type, query, status", CASES, ids=[c[0] for c in CASES])
def test_same_answer_on_every_cloud(aws, gcp, azure, pants, name, method, body, content_type, query, status):
    data = body(*pants)
    answers = {cloud: call(method, data, content_type, query) for cloud, call in
               (("aws", aws), ("gcp", gcp), ("azure", azure))}
    for cloud, (got_status, headers, got_body) in answers.items():
        assert got_status == status, (cloud, got_body)
        assert headers.get("Content-Type", headers.get("content-type", "")).startswith("application/json"), cloud
        if status == 405:
            assert "POST" in (headers.get("Allow") or headers.get("allow")), cloud
    bodies = {cloud: answer[2] for cloud, answer in answers.items()}
    assert bodies["aws"] == bodies["gcp"] == bodies["azure"]
    if status >= 400:
        assert bodies["aws"]["error"]["type"] and bodies["aws"]["error"]["message"]
