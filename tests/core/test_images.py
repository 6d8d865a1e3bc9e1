"""Decoding: every supported format and mode comes out as something keras_image_helper can use."""
import io

import numpy as np
import pytest
from PIL import Image

from core.errors import InvalidImage, PayloadTooLarge
from core.images import decode_image
from tests.conftest import image_bytes


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP"])
def test_formats(fmt):
    img = decode_image(image_bytes(fmt, size=(40, 30)), max_pixels=10**6)
    assert img.size == (40, 30)
    assert img.convert("RGB").getpixel((5, 5))[0] > 150  # red survived


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "L", "CMYK", "1"])
def test_modes_convert_to_rgb(mode):
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    img = decode_image(image_bytes(fmt, mode=mode), max_pixels=10**6)
    assert img.convert("RGB").mode == "RGB"


def test_16bit_greyscale_is_scaled_not_clipped():
    raw = Image.fromarray(np.full((20, 20), 32768, dtype=np.uint16))
    buf = io.BytesIO()
    raw.save(buf, "PNG")
    img = decode_image(buf.getvalue(), max_pixels=10**6)
    value = img.convert("RGB").getpixel((3, 3))
    assert value == (127, 127, 127) or value == (128, 128, 128)


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    img = decode_image(buf.getvalue(), max_pixels=10**6).convert("RGB")
    r, g, b = img.getpixel((10, 10))
    assert r > 200 and b < 50


def test_pixel_limit_checked_before_decoding():
    data = image_bytes("PNG", size=(3000, 3000), mode="L")
    with pytest.raises(PayloadTooLarge, match="3000x3000"):
        decode_image(data, max_pixels=1_000_000)


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"hello, not an image", "not a decodable image"),
    (image_bytes("JPEG", size=(200, 200))[:300], "could not be decoded"),
    (image_bytes("PNG", size=(200, 200))[:60], "could not be decoded"),
])
def test_bad_bytes_are_invalid_image(data, message):
    with pytest.raises(InvalidImage, match=message):
        decode_image(data, max_pixels=10**6)


def test_unsupported_format_is_refused():
    buf = io.BytesIO()
    Image.new("RGB", (10, 10)).save(buf, "TIFF")
    with pytest.raises(InvalidImage, match="supported formats"):
        decode_image(buf.getvalue(), max_pixels=10**6)


def test_jpeg_draft_is_opt_in_and_never_below_the_model_size():
    big = image_bytes("JPEG", size=(1600, 1200))
    assert decode_image(big, max_pixels=10**7).size == (1600, 1200)  # default: full decode, as Keras
    drafted = decode_image(big, max_pixels=10**7, draft_size=(160, 160))
    assert drafted.size == (400, 300)  # 1/4 scale: 1/8 would give 200x150, below 160 in height
    png = image_bytes("PNG", size=(1600, 1200))
    assert decode_image(png, max_pixels=10**7, draft_size=(160, 160)).size == (1600, 1200)  # JPEG only
