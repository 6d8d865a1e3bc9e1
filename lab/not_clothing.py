"""A development set of photos that show no clothing, to measure whether the classifier can say "this is not
clothing": its answers on these must not be garments, and the score that says so is set on them.

    python -m lab.not_clothing [--cache DIR]

The photos come only from what package registries ship (their licences keep them out of this repository: they
are gathered into a cache outside it, by default ``~/.cache/clothing-classifier/not-clothing``), each as
``DIR/<group>/<name>``. A second run keeps what is there and fetches only what is missing. The groups:

``skimage``
    scikit-image's bundled ``skimage/data`` images (from the installed package, nothing downloaded): a cat,
    coffee, a rocket, coins, the moon, bricks, grass, gravel, a horse's silhouette, text, microscopy, the Hubble
    deep field, a motorcycle, test patterns.
``sklearn``
    scikit-learn's two sample photos, ``china.jpg`` and ``flower.jpg``, read from its wheel (not installed).
``pillow``
    Real photographs from the test images of Pillow's source distribution, chosen by looking at them
    (``PILLOW_PHOTOS``): puppies, a mountain, an aeroplane, flowers, a snowy forest, rocks, a beach, a sign, a
    field, a cabin, a compact mirror on pavement. MPO files are stored as the JPEG of their first frame.
``stamps-<category>``
    Debian's ``tuxpaint-stamps-default``: Tux Paint's stamps (photos and drawings of animals, food, household
    things, plants, vehicles, buildings, coins...), composited on white like a catalogue photo. The file is the
    stamp's path below its category, with ``__`` for ``/``: ``stamps-animals/mammals__cats__tiger.png``.
    Skipped: the alphabets (letters and sign-language hands), mirrored duplicates, SVGs, stamps under 64 px.

Kept apart, and not counted as not-clothing (``PEOPLE_GROUPS``); each file is ``<source>__<its path>``:

``people``
    People, who wear clothes: scikit-image's astronaut and cameraman, Pillow's Grace Hopper, Tux Paint's
    ``people/`` stamps and the stamps elsewhere that show a person (a fireman, a paratrooper, a spacewalk, Santa).
``stamps-clothing-like``
    Tux Paint's ``clothes/`` stamps (hats, shirts, jeans, socks, a glove...) and the stamps elsewhere that show
    clothing (a Santa hat, a stocking, a party hat, football helmets, boots, toys in a dress or a bow tie).

Every file is an image the service accepts (``core.images.decode_image`` reads it), at least 64 px a side.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from PIL import Image

DEFAULT_CACHE = Path("~/.cache/clothing-classifier/not-clothing")
MIN_SIDE = 64
PEOPLE, CLOTHING_LIKE = "people", "stamps-clothing-like"
PEOPLE_GROUPS = (PEOPLE, CLOTHING_LIKE)  # people or clothing: the groups NOT counted as not-clothing

SKIMAGE_PEOPLE = ("astronaut.png", "camera.png")

# Pinned, so that the allow-list below names files that exist.
SKLEARN = "scikit-learn==1.9.1"
SKLEARN_IMAGES = ("sklearn/datasets/images/china.jpg", "sklearn/datasets/images/flower.jpg")
PILLOW = "pillow==13.0.0"
PILLOW_PHOTOS = (  # Tests/images/: its real photographs, one file of each (many are one photo re-encoded)
    "app13-multiple.jpg",  # three puppies
    "exif-72dpi-int.jpg",  # a snowy mountain
    "exif_gps_typeerror.jpg",  # an aeroplane on a runway
    "flower.jpg",  # a frangipani
    "flower2.jpg",  # heather
    "frozenpond.mpo",  # a snowy forest
    "fujifilm.mpo",  # rocks and plants, 10 MP
    "icc_profile_big.jpg",  # a beach
    "iptc.jpg",  # a building's sign
    "junk_jpeg_header.jpg",  # a field and a shed
    "sugarshack.mpo",  # a cabin in the snow
    "xmp_tags_orientation.png",  # white roses
    "xmp_test.jpg",  # a compact mirror on pavement
)
PILLOW_PEOPLE = ("hopper.jpg",)

STAMPS_PACKAGE = "tuxpaint-stamps-default"
STAMPS_ROOT = "usr/share/tuxpaint/stamps/"
STAMPS_DONE = ".stamps-done"  # written once the stamps are all in: their package is not downloaded again
# Stamp paths (below STAMPS_ROOT) by prefix; checked by looking at every stamp.
PEOPLE_STAMPS = (
    "people/",
    "military/fireman240a.png",
    "military/paratrooper.png",
    "space/spacewalk.png",
    "seasonal/christmas/German_Christmas_toy.png",  # a nutcracker figure in uniform
    "seasonal/christmas/Santa.png",
)
CLOTHING_STAMPS = (
    "clothes/",
    "military/final-roll-call.png",  # boots and a helmet
    "sports/cartoon/football_helmet",
    "seasonal/christmas/santa_hat.png",
    "seasonal/christmas/stocking.png",
    "seasonal/newyears/party-hat.png",
    "seasonal/easter/bunny.png",  # a toy rabbit in a dress
    "animals/mammals/cats/cartoon/lion.png",  # a toy lion in a dress
    "animals/mammals/bears/toys/edward_bear.png",  # a teddy bear in a bow tie
)
SKIPPED_STAMPS = ("symbols/alphabets/",)  # letters and sign-language hands: not objects


class NotClothingError(Exception):
    """A problem gathering the set (a download, a missing file); printed as one plain line."""


class StampsUnavailable(NotClothingError):
    """Debian's package cannot be had here (no apt, no network to the archive): the stamps are skipped."""


def stamp_destination(relative: str) -> tuple[str, str] | None:
    """The (group, file name) of the stamp at ``relative`` (below ``STAMPS_ROOT``), or None for one not taken."""
    path = Path(relative)
    if path.suffix != ".png" or path.stem.endswith("_mirror") or relative.startswith(SKIPPED_STAMPS):
        return None
    flat = relative.replace("/", "__")
    if relative.startswith(PEOPLE_STAMPS):
        return PEOPLE, f"stamps__{flat}"
    if relative.startswith(CLOTHING_STAMPS):
        return CLOTHING_LIKE, f"stamps__{flat}"
    category, _, rest = relative.partition("/")
    return (f"stamps-{category}", rest.replace("/", "__")) if rest else None


def on_white(img: Image.Image) -> Image.Image:
    """``img`` composited on white, as RGB (a stamp's transparent background becomes a catalogue photo's)."""
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def photo_groups(cache: Path) -> dict[str, list[Path]]:
    """The gathered photos by group, both sorted by name (``PEOPLE_GROUPS`` included: leave them out to count
    not-clothing); empty where nothing is gathered yet."""
    if not cache.is_dir():
        return {}
    groups = {}
    for folder in sorted(p for p in cache.iterdir() if p.is_dir() and not p.name.startswith(".")):
        photos = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        if photos:
            groups[folder.name] = photos
    return groups


def stored_name(name: str) -> str:
    """The name a source file is stored under: the service's formats keep theirs; an MPO becomes the JPEG of its
    first frame, anything else a PNG."""
    from core.images import IMAGE_SUFFIXES

    path = Path(name)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return name
    return path.with_suffix(".jpg" if path.suffix.lower() == ".mpo" else ".png").name


def stored_bytes(name: str, data: bytes) -> bytes | None:
    """``data`` as stored under ``stored_name(name)``, or None where the service cannot decode it or it is under
    ``MIN_SIDE`` a side."""
    from core.errors import InvalidImage, PayloadTooLarge
    from core.images import decode_image

    target = Path(stored_name(name)).suffix
    try:
        if target != Path(name).suffix:
            data = _converted(data, "JPEG" if target == ".jpg" else "PNG")
        decoded = decode_image(data, 10**9)
    except (InvalidImage, PayloadTooLarge, OSError, ValueError, SyntaxError, EOFError):
        return None
    return data if min(decoded.size) >= MIN_SIDE else None


def _converted(data: bytes, form: str) -> bytes:
    """The first frame of the image in ``data`` as a JPEG (quality 95, its EXIF kept) or a PNG."""
    out = io.BytesIO()
    with Image.open(io.BytesIO(data)) as img:
        img.seek(0)
        if form == "JPEG":
            img.convert("RGB").save(out, "JPEG", quality=95, exif=img.info.get("exif", b""))
        else:
            img.convert("RGBA" if "A" in img.getbands() else "RGB").save(out, "PNG")
    return out.getvalue()


def put(folder: Path, name: str, data: bytes) -> None:
    """Write ``folder/name`` whole (through a hidden temporary file, so an interrupted run leaves no half file)."""
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f".{name}.part"
    part.write_bytes(data)
    os.replace(part, folder / name)


def take(cache: Path, group: str, name: str, data: bytes) -> bool:
    """Store one source file in ``group`` unless it is there; False where it is not usable."""
    if (cache / group / stored_name(name)).exists():
        return True
    stored = stored_bytes(name, data)
    if stored is None:
        return False
    put(cache / group, stored_name(name), stored)
    return True


def gather_skimage(cache: Path) -> None:
    """scikit-image's bundled images, from the installed package's data folder (its downloads are not used)."""
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    if spec is None or spec.origin is None:
        raise NotClothingError("scikit-image is not installed (make install-python)")
    for path in sorted((Path(spec.origin).parent / "data").iterdir()):
        if path.is_file() and not path.name.startswith(("_", ".")):
            people = path.name in SKIMAGE_PEOPLE
            take(
                cache,
                PEOPLE if people else "skimage",
                f"skimage__{path.name}" if people else path.name,
                path.read_bytes(),
            )


def pip_download(spec: str, folder: Path, *, source: bool) -> Path:
    """``pip download`` one distribution, without its dependencies: the sdist where ``source``, else a wheel.

    The option names the package, not ``:all:``: pip applies it to the build's own dependencies too, which it
    prepares to read an sdist's metadata, and building those from source takes minutes."""
    name = spec.partition("==")[0]
    flag = f"--no-binary={name}" if source else f"--only-binary={name}"
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", flag, spec, "-d", str(folder)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    files = sorted(folder.iterdir())
    if done.returncode != 0 or len(files) != 1:
        lines = done.stderr.strip().splitlines() or ["no output"]
        raise NotClothingError(f"pip download {spec} failed: {lines[-1]}")
    return files[0]


def gather_sklearn(cache: Path) -> None:
    """scikit-learn's two sample photos, read out of its wheel (a zip)."""
    if all((cache / "sklearn" / Path(member).name).exists() for member in SKLEARN_IMAGES):
        return
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(pip_download(SKLEARN, Path(tmp), source=False)) as wheel:
            for member in SKLEARN_IMAGES:
                if not take(cache, "sklearn", Path(member).name, wheel.read(member)):
                    raise NotClothingError(f"{SKLEARN}'s {member} is not an image the service decodes")


def gather_pillow(cache: Path) -> None:
    """The photos of ``PILLOW_PHOTOS`` (and of ``PILLOW_PEOPLE``), read out of Pillow's sdist (a .tar.gz)."""
    wanted = {name: ("pillow", name) for name in PILLOW_PHOTOS}
    wanted |= {name: (PEOPLE, f"pillow__{name}") for name in PILLOW_PEOPLE}
    if all((cache / group / stored_name(name)).exists() for group, name in wanted.values()):
        return
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(pip_download(PILLOW, Path(tmp), source=True)) as sdist:
            for member in sdist:
                folder, _, name = member.name.rpartition("/")
                if name not in wanted or not folder.endswith("/Tests/images"):
                    continue
                data = sdist.extractfile(member)
                if data is None or not take(cache, *wanted.pop(name), data.read()):
                    raise NotClothingError(f"{PILLOW}'s Tests/images/{name} is not an image the service decodes")
    if wanted:
        raise NotClothingError(f"{PILLOW}'s sdist has no Tests/images/{', '.join(sorted(wanted))}")


def stamps_package(folder: Path) -> Path:
    """Debian's stamps package, downloaded into ``folder`` by apt (after ``apt-get update`` where it needs one)."""
    if not (shutil.which("apt-get") and shutil.which("dpkg-deb")):
        raise StampsUnavailable("apt-get and dpkg-deb are not installed (a Debian or Ubuntu system has them)")
    download = ["apt-get", "download", "-qq", STAMPS_PACKAGE]
    done = subprocess.run(download, cwd=folder, capture_output=True, text=True)
    if done.returncode != 0:  # no package lists yet: update them (as root) and try again
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
        done = subprocess.run(download, cwd=folder, capture_output=True, text=True)
    debs = sorted(folder.glob("*.deb"))
    if done.returncode != 0 or not debs:
        lines = done.stderr.strip().splitlines() or ["no output"]
        raise StampsUnavailable(f"apt-get download {STAMPS_PACKAGE} failed: {lines[-1]}")
    return debs[0]


def package_pngs(deb: Path) -> Iterator[tuple[str, bytes]]:
    """(path below ``STAMPS_ROOT``, bytes) of each PNG in the package, read from its file tree as a stream (the
    package is mostly sound files, which are never written out)."""
    command = ["dpkg-deb", "--fsys-tarfile", str(deb)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as tree:
        if tree.stdout is None:  # never: stdout is a pipe
            raise StampsUnavailable("dpkg-deb gave no output")
        try:
            with tarfile.open(fileobj=tree.stdout, mode="r|") as files:
                for member in files:
                    path = member.name.removeprefix("./")
                    data = files.extractfile(member) if member.isfile() and path.endswith(".png") else None
                    if data is not None and path.startswith(STAMPS_ROOT):
                        yield path.removeprefix(STAMPS_ROOT), data.read()
        except tarfile.TarError:
            pass  # dpkg-deb failed: said below
        tree.stdout.read()  # the archive's padding: dpkg-deb must not be stopped by a closed pipe
    if tree.returncode != 0:
        raise StampsUnavailable(f"dpkg-deb could not read {deb.name}")


def gather_stamps(cache: Path) -> None:
    """Tux Paint's stamps, each composited on white and stored as a PNG in its group (``stamp_destination``)."""
    if (cache / STAMPS_DONE).exists():
        return
    with tempfile.TemporaryDirectory() as tmp:
        for relative, data in package_pngs(stamps_package(Path(tmp))):
            destination = stamp_destination(relative)
            if destination is None or (cache / destination[0] / destination[1]).exists():
                continue
            with Image.open(io.BytesIO(data)) as img:
                if min(img.size) < MIN_SIDE:
                    continue
                out = io.BytesIO()
                on_white(img).save(out, "PNG")
            put(cache / destination[0], destination[1], out.getvalue())
    (cache / STAMPS_DONE).write_text(f"{STAMPS_PACKAGE}\n")


def report(cache: Path) -> None:
    """One line per group with its count, then the totals."""
    groups = photo_groups(cache)
    if not groups:
        raise NotClothingError(f"nothing was gathered into {cache}")
    for group, photos in groups.items():
        apart = "  (kept apart: shows people or clothing)" if group in PEOPLE_GROUPS else ""
        print(f"{group:<24} {len(photos):>4}{apart}")
    counted = sum(len(photos) for group, photos in groups.items() if group not in PEOPLE_GROUPS)
    apart_total = sum(len(photos) for group, photos in groups.items() if group in PEOPLE_GROUPS)
    print(f"not clothing: {counted} photos; kept apart: {apart_total}; in {cache}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lab.not_clothing", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"where the photos go (default {DEFAULT_CACHE})")
    args = p.parse_args(argv)
    cache = args.cache.expanduser()
    try:
        gather_skimage(cache)
        gather_sklearn(cache)
        gather_pillow(cache)
        try:
            gather_stamps(cache)
        except StampsUnavailable as exc:
            print(f"stamps skipped: {exc}", file=sys.stderr)
        report(cache)
    except NotClothingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
