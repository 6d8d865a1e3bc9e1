"""Hostile files through all three adapters, as raw bodies and as base64 JSON: the expected answer for each,
the same on every cloud, and always JSON."""

import base64
import json

import pytest

from tests.robustness.hostile import CORPUS


@pytest.mark.parametrize("name", list(CORPUS))
def test_hostile_file_gets_its_expected_answer(aws, gcp, azure, name):
    data, status, kind = CORPUS[name]
    for cloud, call in (("aws", aws), ("gcp", gcp), ("azure", azure)):
        got_status, _, body = call("POST", data, "image/png")
        assert got_status == status, (cloud, body)
        if kind:
            assert body["error"]["type"] == kind, (cloud, body)
        else:
            assert len(body) == 10 and all(isinstance(v, float) for v in body.values())
    if data:  # the same bytes as base64 in JSON give the same answer
        got_status, _, body = aws(
            "POST", json.dumps({"image": base64.b64encode(data).decode()}).encode(), "application/json"
        )
        assert got_status == status, body


def test_a_damaged_exif_block_is_read_as_upright_not_refused(service):
    """An EXIF block Pillow cannot parse says nothing about orientation: the pixels are classified as stored."""
    import io

    from PIL import Image

    from core.images import decode_image

    buf = io.BytesIO()
    Image.new("RGB", (60, 30), (250, 10, 10)).save(buf, "JPEG", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and silently: no warning line per hostile file in the logs
        assert decode_image(buf.getvalue(), 10**6).size == (60, 30)
