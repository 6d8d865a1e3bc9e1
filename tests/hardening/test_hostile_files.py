"""Hostile files through all three adapters, as raw bodies and as base64 JSON: the expected answer for each,
the same on every cloud, and always JSON."""

import base64
import json

import pytest

from tests.hardening.hostile import CORPUS


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


def test_exif_orientation_is_ignored_like_keras(service, tmp_path):
    """Decision: like Keras' load_img, EXIF orientation is not applied; the model saw photos that way in training."""
    import io

    from keras_image_helper import create_preprocessor
    from PIL import Image

    img = Image.new("RGB", (60, 30), (250, 10, 10))
    img.paste((10, 10, 250), (0, 0, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=95)
    path = tmp_path / "rotated.jpg"
    path.write_bytes(buf.getvalue())
    from core.images import decode_image

    clf = service.classifier.load()
    ours = clf.preprocess(decode_image(path.read_bytes(), 10**7))
    height, width = clf.manifest.input_size
    expected = create_preprocessor(clf.manifest.preprocessing, target_size=(width, height)).from_path(str(path))
    assert (ours == expected).all()
