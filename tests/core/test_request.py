"""Request parsing: every malformed request is a 4xx ServiceError with a clear message."""

import base64

import pytest

from core.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from core.request import (
    ParseRules,
    check_media_type,
    from_payload,
    from_raw_image,
    options_from_query,
    parse_json_body,
)

PNG = b"\x89PNG fake"


def rules(max_batch=4):
    return ParseRules(max_batch=max_batch, max_image_bytes=1000, max_body_bytes=10_000, label_count=lambda: 10)


def parse(payload, **kw):
    return from_payload(payload, rules(max_batch=kw.get("max_batch", 4)))


def test_url_request():
    req = parse({"url": "http://example.com/a.jpg"})
    assert not req.batch and req.sources[0].kind == "url" and req.top_k is None


def test_batch_of_images_with_options():
    b64 = base64.b64encode(PNG).decode()
    req = parse({"images": [b64, b64], "top_k": 3, "probabilities": True})
    assert req.batch and len(req.sources) == 2 and req.sources[0].value == PNG
    assert req.top_k == 3 and req.probabilities is True and req.details is False
    assert parse({"images": [b64], "details": True}).details is True


@pytest.mark.parametrize(
    "b64",
    [
        base64.b64encode(PNG).decode(),
        base64.urlsafe_b64encode(PNG).decode().rstrip("="),
        "data:image/png;base64," + base64.b64encode(PNG).decode(),
        base64.encodebytes(PNG * 30).decode(),  # wrapped lines, as `base64 file` prints
    ],
)
def test_base64_spellings(b64):
    assert parse({"image": b64}).sources[0].value.startswith(PNG)


@pytest.mark.parametrize(
    "payload, message",
    [
        ({}, "exactly one"),
        ({"url": "http://a/b", "image": "AAAA"}, "exactly one"),
        ({"url": 5}, "URL strings"),
        ({"url": ""}, "URL strings"),
        ({"image": "!!not base64!!"}, "not valid base64"),
        ({"image": 12}, "base64 strings"),
        ({"urls": []}, "non-empty list"),
        ({"urls": "http://a/b"}, "non-empty list"),
        ({"urls": ["http://a/b"] * 5}, "limit is 4"),
        ({"url": "http://a/b", "top_k": 0}, "between 1 and 10"),
        ({"url": "http://a/b", "top_k": 11}, "between 1 and 10"),
        ({"url": "http://a/b", "top_k": "3"}, "integer"),
        ({"url": "http://a/b", "top_k": True}, "integer"),
        ({"url": "http://a/b", "probabilities": "yes"}, "true or false"),
        ({"url": "http://a/b", "details": 1}, "'details' must be true or false"),
        ({"url": "http://a/b", "colour": "red"}, "unknown field"),
        (["http://a/b"], "JSON object"),
    ],
)
def test_bad_payloads(payload, message):
    with pytest.raises(BadRequest, match=message) as info:
        parse(payload)
    assert info.value.status == 400


def test_oversized_base64_is_413():
    with pytest.raises(PayloadTooLarge):
        parse({"image": base64.b64encode(b"x" * 5000).decode()})


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "empty"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be an object"),
        (b"\xff\xfe\x00", "UTF-8"),
        (b"[" * 100000 + b"]" * 100000, "JSON"),
    ],
)
def test_bad_json_bodies(body, message):
    with pytest.raises(BadRequest, match=message):
        parse_json_body(body)


def test_raw_image_options_from_query():
    req = from_raw_image(PNG, options_from_query({"top_k": "2", "probabilities": "true"}), rules())
    assert req.top_k == 2 and req.probabilities and req.sources[0].value == PNG and not req.details
    assert from_raw_image(PNG, options_from_query({"details": "1"}), rules()).details
    with pytest.raises(BadRequest, match="'details' must be true or false"):
        options_from_query({"details": "yes"})
    with pytest.raises(BadRequest):
        options_from_query({"top_k": "two"})
    with pytest.raises(BadRequest):
        options_from_query({"probabilities": "null"})
    with pytest.raises(BadRequest):
        from_raw_image(PNG, {"top_k": 0}, rules())
    with pytest.raises(PayloadTooLarge):
        from_raw_image(b"x" * 2000, {}, rules())


def test_media_types():
    check_media_type("application/json")
    check_media_type("image/jpeg")
    check_media_type("")
    with pytest.raises(UnsupportedMediaType) as info:
        check_media_type("application/xml")
    assert info.value.status == 415


@pytest.mark.parametrize("spell", [base64.b64encode, base64.urlsafe_b64encode, base64.encodebytes])
def test_clean_and_pasted_base64_decode_to_the_same_bytes(spell):
    data = bytes(range(256)) * 2  # every byte value: '+', '/', '-' and '_' all occur in the encodings
    assert parse({"image": spell(data).decode()}).sources[0].value == data


@pytest.mark.parametrize("b64", ["QUJD\u00e9", "QU=JD", "Q"])
def test_base64_neither_path_accepts_is_refused(b64):
    with pytest.raises(BadRequest, match="not valid base64"):
        parse({"image": b64})


def test_pythons_without_binascii_strict_mode_take_the_lenient_path(monkeypatch):
    import core.request

    monkeypatch.setattr(core.request, "STRICT", {})  # Python 3.10: a2b_base64 takes no strict_mode
    data = bytes(range(256)) * 2
    assert parse({"image": base64.b64encode(data).decode()}).sources[0].value == data
    with pytest.raises(BadRequest, match="not valid base64"):
        parse({"image": "QU=JD"})
