"""lab.phone_sizes: the accuracy table by photo size and decode path that chooses JPEG_EXACT_MAX_PIXELS."""

import io
import json

import numpy as np
import pytest
from PIL import Image

from core.images import decode_image
from core.manifest import load_manifest
from core.model import Classifier
from lab import phone_sizes
from tests.helpers import MANIFEST, ROOT, photo_views


@pytest.fixture
def split(tmp_path):
    """One real photo per label (views of the sample photos, so the labels are mostly wrong: the table's
    arithmetic is what is tested, against answers computed here)."""
    labels = load_manifest(MANIFEST).labels
    views = photo_views(ROOT / "samples" / "t-shirt.jpg", len(labels))
    for label, view in zip(labels, views, strict=True):
        (tmp_path / "split" / label).mkdir(parents=True)
        view.save(tmp_path / "split" / label / "photo.jpg", quality=90)
    return tmp_path / "split"


def test_the_table_has_every_size_and_path_and_counts_right(split, tmp_path, monkeypatch):
    monkeypatch.setattr(phone_sizes, "SIZES_MP", (2.0,))  # the worker process is forked: it sees this too
    out = tmp_path / "table.json"
    assert phone_sizes.main([str(MANIFEST), "--split", str(split), "--jobs", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = {(row["megapixels"], row["path"]): row for row in result["rows"]}
    assert result["photos"] == 10
    assert set(rows) == {(size, path) for size in ("native", "2.0") for path in phone_sizes.PATHS}
    assert rows["native", "exact"]["agrees_with_native"] == 1.0
    assert rows["native", "exact"]["lost"] == rows["native", "exact"]["gained"] == 0
    for row in rows.values():  # the counts explain the accuracy: right = right natively - lost + gained
        assert row["accuracy"] * 10 == pytest.approx(
            rows["native", "exact"]["accuracy"] * 10 - row["lost"] + row["gained"]
        )

    clf = Classifier(MANIFEST).load()
    labels = list(clf.loaded_manifest().labels)
    right = [
        labels[int(np.argmax(clf.predict(clf.preprocess(decode_image(path.read_bytes(), 10**8)))))] == path.parent.name
        for path in sorted(split.glob("*/photo.jpg"))
    ]
    assert rows["native", "exact"]["accuracy"] == pytest.approx(np.mean(right))


def test_the_page_path_sends_what_the_page_sends():
    with Image.open(ROOT / "samples" / "pants.jpg") as img:
        big = phone_sizes.enlarged((ROOT / "samples" / "pants.jpg").read_bytes(), 2.0)
        small_side = max(img.size)
    with Image.open(io.BytesIO(big)) as enlarged:
        assert 1.9e6 < enlarged.width * enlarged.height < 2.1e6
    with Image.open(io.BytesIO(phone_sizes.page_upload(big))) as sent:
        assert max(sent.size) == phone_sizes.PAGE_LONG_SIDE
    small = (ROOT / "samples" / "pants.jpg").read_bytes()
    assert small_side <= phone_sizes.PAGE_LONG_SIDE and phone_sizes.page_upload(small) is small


def test_exactly_one_source_of_photos(split, capsys):
    for extra in ([], ["--split", str(split), "--fold", str(split)]):
        with pytest.raises(SystemExit) as info:
            phone_sizes.main([str(MANIFEST), *extra])
        assert info.value.code == 2
    assert "exactly one of --split and --fold" in capsys.readouterr().err
