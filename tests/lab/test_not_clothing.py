"""lab.not_clothing: the not-clothing development set's layout, stamp groups and compositing (no download)."""

import io

import pytest
from PIL import Image

from lab import not_clothing
from lab.not_clothing import CLOTHING_LIKE, PEOPLE, PEOPLE_GROUPS, on_white, photo_groups, stamp_destination


def test_photo_groups_lists_each_group_sorted_and_skips_hidden_and_empty(tmp_path):
    for relative in ("b/2.png", "b/1.jpg", "a/x.png", "a/.y.png.part", ".hidden/z.png", ".stamps-done"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_bytes(b"")
    (tmp_path / "empty").mkdir()
    assert photo_groups(tmp_path) == {"a": [tmp_path / "a/x.png"], "b": [tmp_path / "b/1.jpg", tmp_path / "b/2.png"]}
    assert list(photo_groups(tmp_path)) == ["a", "b"]


def test_photo_groups_of_a_cache_not_gathered_yet_is_empty(tmp_path):
    assert photo_groups(tmp_path / "nowhere") == {}


def test_a_stamp_is_composited_on_white():
    stamp = Image.new("RGBA", (3, 1))
    stamp.putdata([(10, 20, 30, 0), (200, 30, 40, 255), (0, 0, 0, 128)])
    flat = on_white(stamp)
    assert flat.mode == "RGB"
    assert flat.getpixel((0, 0)) == (255, 255, 255)  # transparent: white, whatever colour it held
    assert flat.getpixel((1, 0)) == (200, 30, 40)  # opaque: its own colour
    assert flat.getpixel((2, 0)) == (127, 127, 127)  # half-transparent black: mid grey


@pytest.mark.parametrize(
    "relative, destination",
    [
        ("animals/mammals/cats/tiger.png", ("stamps-animals", "mammals__cats__tiger.png")),
        ("seasonal/candle.png", ("stamps-seasonal", "candle.png")),
        ("people/cartoon/mermaid.png", (PEOPLE, "stamps__people__cartoon__mermaid.png")),
        ("space/spacewalk.png", (PEOPLE, "stamps__space__spacewalk.png")),
        ("clothes/hats/tophat.png", (CLOTHING_LIKE, "stamps__clothes__hats__tophat.png")),
        ("clothes/t_sock.png", (CLOTHING_LIKE, "stamps__clothes__t_sock.png")),
        ("seasonal/christmas/stocking.png", (CLOTHING_LIKE, "stamps__seasonal__christmas__stocking.png")),
        (
            "sports/cartoon/football_helmet_side.png",
            (CLOTHING_LIKE, "stamps__sports__cartoon__football_helmet_side.png"),
        ),
        ("sports/tennis_ball.png", ("stamps-sports", "tennis_ball.png")),
        ("symbols/alphabets/asl/asl_a.png", None),  # letters and hands: not taken
        ("military/vehicles/bradley_mirror.png", None),  # a mirrored duplicate
        ("clothes/bikini.svg", None),
        ("loose.png", None),  # no category
    ],
)
def test_people_and_clothing_stamps_are_kept_apart(relative, destination):
    assert stamp_destination(relative) == destination


def test_the_groups_kept_apart_are_the_people_and_the_clothing():
    assert set(PEOPLE_GROUPS) == {PEOPLE, CLOTHING_LIKE} == {"people", "stamps-clothing-like"}


def test_formats_the_service_refuses_are_stored_as_png_or_jpeg():
    assert not_clothing.stored_name("photo.JPG") == "photo.JPG"
    assert not_clothing.stored_name("scan.tif") == "scan.png"
    assert not_clothing.stored_name("pair.mpo") == "pair.jpg"
    tiff = io.BytesIO()
    Image.new("RGB", (80, 64), (1, 2, 3)).save(tiff, "TIFF")
    stored = not_clothing.stored_bytes("scan.tif", tiff.getvalue())
    assert stored is not None and stored.startswith(b"\x89PNG")
    with Image.open(io.BytesIO(stored)) as png:
        assert png.size == (80, 64) and png.getpixel((0, 0)) == (1, 2, 3)


def test_small_or_broken_files_are_not_taken():
    small = io.BytesIO()
    Image.new("RGB", (80, 63)).save(small, "PNG")
    assert not_clothing.stored_bytes("small.png", small.getvalue()) is None
    assert not_clothing.stored_bytes("notes.txt", b"not an image") is None


def test_a_photo_already_gathered_is_kept(tmp_path):
    (tmp_path / "pillow").mkdir()
    (tmp_path / "pillow" / "flower.jpg").write_bytes(b"kept")
    assert not_clothing.take(tmp_path, "pillow", "flower.jpg", b"not even an image")
    assert (tmp_path / "pillow" / "flower.jpg").read_bytes() == b"kept"
    assert not not_clothing.take(tmp_path, "pillow", "other.jpg", b"not an image")
    assert not (tmp_path / "pillow" / "other.jpg").exists()
