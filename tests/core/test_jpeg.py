"""JPEGs through libjpeg-turbo directly (core/jpeg.py): Pillow's very pixels at full size, upright by the file's
EXIF tag, scaled by the DCT only where asked; what libjpeg-turbo's strict mode refuses goes to Pillow, so a file is
accepted or refused exactly as before."""

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from core import jpeg
from core.errors import InvalidImage
from core.images import decode_image, open_image
from tests.camera import tagged_jpeg
from tests.helpers import ROOT, image_bytes, jpeg_of

SAMPLES = sorted((ROOT / "samples").glob("*.jpg"))


def pillow_pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(ImageOps.exif_transpose(img))


def photo(size=(640, 480)) -> Image.Image:
    with Image.open(SAMPLES[0]) as img:
        return img.convert("RGB").resize(size, Image.Resampling.BICUBIC)


def test_libjpeg_turbo_decodes_the_samples_as_pillow_does():
    assert jpeg.available()  # requirements.txt ships it: without it every JPEG silently takes the slower path
    for path in SAMPLES:
        data = path.read_bytes()
        opened = open_image(data, 10**8)
        assert opened.colorspace == "RGB"
        np.testing.assert_array_equal(np.asarray(decode_image(data, 10**8)), pillow_pixels(data))


@pytest.mark.parametrize(
    "save",
    [
        {"quality": 95, "subsampling": 0},  # 4:4:4
        {"quality": 75, "subsampling": 2},  # 4:2:0, a camera's usual
        {"quality": 90, "progressive": True},
        {"quality": 90, "optimize": True},
    ],
    ids=["444", "420", "progressive", "optimized"],
)
def test_every_common_encoding_gives_pillows_pixels(save):
    data = jpeg_of(photo((641, 479)), **save)  # odd sizes: partial MCU blocks at the edges
    np.testing.assert_array_equal(np.asarray(decode_image(data, 10**8)), pillow_pixels(data))


def test_greyscale_stays_one_channel_with_pillows_values():
    data = jpeg_of(photo().convert("L"))
    img = decode_image(data, 10**8)
    assert img.mode == "L" and open_image(data, 10**8).colorspace == "GRAY"
    np.testing.assert_array_equal(np.asarray(img), pillow_pixels(data))


@pytest.mark.parametrize("tag", range(1, 9))
def test_each_exif_orientation_turns_as_pillow_turns_it(tag):
    data = tagged_jpeg(photo((320, 200)), tag)
    assert open_image(data, 10**8).colorspace == "RGB"  # the fast path, not Pillow's
    np.testing.assert_array_equal(np.asarray(decode_image(data, 10**8)), pillow_pixels(data))


def test_cmyk_jpegs_keep_pillows_conversion():
    data = image_bytes("JPEG", size=(80, 60), mode="CMYK", color=(10, 200, 30, 40))
    opened = open_image(data, 10**8)
    assert opened.colorspace is None  # Pillow decodes it: its CMYK -> RGB is the one Keras' pixels come from
    with Image.open(io.BytesIO(data)) as img:
        expected = np.asarray(img.convert("RGB"))
    np.testing.assert_array_equal(np.asarray(decode_image(data, 10**8).convert("RGB")), expected)


def test_a_big_jpeg_is_scaled_only_above_the_threshold_and_never_below_the_target():
    data = jpeg_of(photo((2000, 1500)))
    exact = open_image(data, 10**8, draft_size=(192, 192), draft_above_pixels=4_000_000)
    assert exact.size == (2000, 1500) and exact.at_least is None
    scaled = open_image(data, 10**8, draft_size=(192, 192), draft_above_pixels=2_000_000)
    assert scaled.size == (500, 375)  # 1/4: 1/8 would be 250x188, below 192 in height
    img = decode_image(data, 10**8, draft_size=(192, 192), draft_above_pixels=2_000_000)
    assert img.size == (500, 375)
    # The same scale Pillow's draft mode picks, and the same pixels.
    with Image.open(io.BytesIO(data)) as reference:
        reference.draft("RGB", (192, 192))
        np.testing.assert_array_equal(np.asarray(img), np.asarray(reference))


def test_the_scaled_decode_turns_by_the_tag_after_scaling():
    data = tagged_jpeg(photo((2000, 1000)), 6)  # stored sideways, 1000x2000, and tagged to be turned back
    img = decode_image(data, 10**8, draft_size=(192, 192))
    assert img.size == (500, 250)
    with Image.open(io.BytesIO(data)) as reference:
        reference.draft("RGB", (192, 192))
        np.testing.assert_array_equal(np.asarray(img), np.asarray(ImageOps.exif_transpose(reference)))


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_a_truncated_jpeg_is_refused(cut):
    data = jpeg_of(photo())
    with pytest.raises(InvalidImage, match="could not be decoded"):
        decode_image(data[: int(len(data) * cut)], 10**8)


def test_garbage_after_a_valid_header_is_refused():
    data = jpeg_of(photo())
    damaged = data[:400] + bytes(range(256)) * 8 + data[400 + 2048 :]
    with pytest.raises(InvalidImage):
        decode_image(damaged, 10**8)


def test_stray_bytes_libjpeg_only_warns_about_are_decoded_as_pillow_decodes_them():
    data = jpeg_of(photo())
    warned = data[:-2] + b"\x00\x12\x34\xff\xd9"  # "2 extraneous bytes before marker 0xd9", common from cameras
    np.testing.assert_array_equal(np.asarray(decode_image(warned, 10**8)), pillow_pixels(warned))
    scaled = decode_image(warned, 10**8, draft_size=(160, 120))  # the fallback scales as Pillow's draft does
    with Image.open(io.BytesIO(warned)) as reference:
        reference.draft("RGB", (160, 120))
        assert scaled.size == reference.size == (160, 120)
        np.testing.assert_array_equal(np.asarray(scaled), np.asarray(reference))


def test_a_progressive_jpeg_holds_its_full_size_in_the_budget_whatever_it_decodes_to():
    data = jpeg_of(photo((2000, 1500)), progressive=True)
    opened = open_image(data, 10**8, draft_size=(192, 192))
    assert opened.size == (500, 375) and opened.holds == 2000 * 1500  # every coefficient is kept until the last scan
    baseline = open_image(jpeg_of(photo((2000, 1500))), 10**8, draft_size=(192, 192))
    assert baseline.holds == 500 * 375


def test_a_photo_stored_turned_is_scaled_for_the_model_input_it_will_fill_upright():
    data = tagged_jpeg(photo((400, 1600)), 6)  # upright 400x1600; stored 1600x400
    img = decode_image(data, 10**8, draft_size=(160, 100))  # a wide model input: 160 wide, 100 high
    assert img.size[0] >= 160 and img.size[1] >= 100


def test_a_big_cmyk_jpeg_is_scaled_by_pillow_and_prepared_like_the_others():
    from core.model import Classifier, DecodeRules
    from tests.helpers import MANIFEST

    data = image_bytes("JPEG", size=(2400, 1800), mode="CMYK", color=(10, 200, 30, 40))
    clf = Classifier(MANIFEST).load()
    rules = DecodeRules.for_input(clf.loaded_manifest().input_size, 10**8, exact_max_pixels=2_000_000)
    opened = open_image(data, rules.max_pixels, rules.draft_size, rules.draft_above_pixels)
    assert opened.colorspace is None and opened.scaled and opened.size == (300, 225)  # Pillow's draft, 1/8
    batch = clf.prepare(data, rules)
    assert batch.shape == (1, 192, 192, 3) and batch.dtype == np.float32
