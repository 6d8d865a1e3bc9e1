"""Decoding: every supported format and mode comes out as something keras_image_helper can use."""

import io

import numpy as np
import pytest
from PIL import Image

from core.errors import InvalidImage, PayloadTooLarge
from core.images import decode_image
from tests.helpers import image_bytes


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


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"hello, not an image", "not a decodable image"),
        (image_bytes("JPEG", size=(200, 200))[:300], "could not be decoded"),
        (image_bytes("PNG", size=(200, 200))[:60], "PNG is truncated"),
    ],
)
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


def png_from_rows(width, height, raw: bytes, interlace=0) -> bytes:
    """A greyscale PNG whose IDAT holds exactly ``raw`` (filter bytes included), however much the header says."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, interlace)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_a_png_whose_data_ends_early_is_invalid_not_zeros():
    """Pillow fills the rows a cleanly-ended zlib stream lacks with zeros; 50 of 6300 rows must be a 422."""
    rows = b"".join(b"\x00" + b"\x80" * 6300 for _ in range(50))
    with pytest.raises(InvalidImage, match="PNG is truncated"):
        decode_image(png_from_rows(6300, 6300, rows), max_pixels=40_000_000)
    complete = png_from_rows(40, 3, b"".join(b"\x00" + bytes(range(40)) for _ in range(3)))
    assert decode_image(complete, max_pixels=10**6).size == (40, 3)


def test_interlaced_pngs_are_counted_pass_by_pass():
    # 10x10 Adam7: passes of (columns x rows) 2x2, 1x2, 3x1, 2x3, 5x2, 5x5, 10x5 -> 120 bytes with filters
    sizes = [(2, 2), (1, 2), (3, 1), (2, 3), (5, 2), (5, 5), (10, 5)]
    raw = b"".join((b"\x00" + b"\x7f" * columns) * rows for columns, rows in sizes)
    assert len(raw) == 120
    image = decode_image(png_from_rows(10, 10, raw, interlace=1), max_pixels=10**6)
    assert image.size == (10, 10) and image.getextrema() == (127, 127)
    with pytest.raises(InvalidImage, match="PNG is truncated"):
        decode_image(png_from_rows(10, 10, raw[:100], interlace=1), max_pixels=10**6)


def _two_colour(size=(60, 30)) -> Image.Image:
    """Red, with a blue corner at the top left: any turn or mirror moves the corner."""
    img = Image.new("RGB", size, (250, 10, 10))
    img.paste((10, 10, 250), (0, 0, size[0] // 3, size[1] // 3))
    return img


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_decodes_to_the_upright_pixels(orientation):
    """PNG is lossless: a photo stored turned or mirrored and tagged decodes to exactly the upright pixels."""
    from tests.camera import tagged

    upright = _two_colour()
    decoded = decode_image(tagged(upright, orientation, "PNG"), max_pixels=10**6)
    assert decoded.size == upright.size
    assert decoded.tobytes() == upright.tobytes()


def test_an_untagged_image_is_left_as_the_same_object():
    """Parity with keras_image_helper for untagged files: upright() hands back the image itself, untouched."""
    from core.images import upright

    img = Image.open(io.BytesIO(image_bytes("JPEG")))
    assert upright(img) is img


def test_avif_decodes_with_pillow_alone():
    img = decode_image(image_bytes("AVIF", size=(40, 30)), max_pixels=10**6)
    assert img.size == (40, 30) and img.convert("RGB").getpixel((20, 15))[0] > 150


def test_heic_decodes_where_the_deployment_installs_pillow_heif():
    """The opt-in (docs/api.md, "How images are prepared"): pillow-heif is installed for development, so core
    registered it. The book's stack (make test-legacy) is the one environment without it."""
    import os

    if os.environ.get("EXPECT_TFLITE_RUNTIME") == "tflite_runtime":
        pytest.skip("the book's stack (.venv-tflite) installs no pillow-heif")
    from pillow_heif import from_pillow

    from core.images import FORMATS, IMAGE_SUFFIXES

    assert "HEIF" in FORMATS and ".heic" in IMAGE_SUFFIXES
    buf = io.BytesIO()
    from_pillow(Image.new("RGB", (64, 48), (200, 30, 30))).save(buf, quality=90)
    img = decode_image(buf.getvalue(), max_pixels=10**6)
    assert img.size == (64, 48) and img.convert("RGB").getpixel((32, 24))[0] > 150


def test_a_heic_photo_where_heif_is_not_installed_says_how_to_enable_it(monkeypatch):
    """The deployed zip has no pillow-heif: an iPhone's photo is answered with what to do, not "not decodable"."""
    from core import images

    monkeypatch.setattr(images, "FORMATS", tuple(f for f in images.FORMATS if f != "HEIF"))
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64  # a HEIC file's first box
    with pytest.raises(InvalidImage, match="HEIC/HEIF photo.*add pillow-heif to requirements.txt"):
        decode_image(heic, max_pixels=10**6)
    with pytest.raises(InvalidImage, match="not a decodable image"):
        decode_image(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 64, max_pixels=10**6)  # an MP4: no hint
