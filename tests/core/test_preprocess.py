"""The array fed to the model equals keras_image_helper's, byte for byte, for the same file."""

import numpy as np
from keras_image_helper import create_preprocessor

from core.images import decode_image
from core.model import Classifier
from tests.helpers import MANIFEST, ROOT, image_bytes


def _classifier():
    return Classifier(MANIFEST).load()


def test_dataset_photo_matches_keras_image_helper(labelled_photos):
    clf = _classifier()
    height, width = clf.manifest.input_size
    reference = create_preprocessor(clf.manifest.preprocessing, target_size=(width, height))
    views = [sorted((labelled_photos / label).glob("*.jpg"))[1:3] for label in ("pants", "t-shirt")]  # crops
    for path in sorted((ROOT / "samples").glob("*.jpg")) + views[0] + views[1]:
        ours = clf.preprocess(decode_image(path.read_bytes(), max_pixels=10**8))
        expected = reference.from_path(str(path))
        assert ours.dtype == np.float32 and ours.shape == (1, height, width, 3)
        np.testing.assert_array_equal(ours, expected)


def test_png_with_alpha_matches_keras_image_helper(tmp_path):
    clf = _classifier()
    height, width = clf.manifest.input_size
    path = tmp_path / "rgba.png"
    path.write_bytes(image_bytes("PNG", size=(300, 200), mode="RGBA", color=(10, 200, 30, 80)))
    reference = create_preprocessor(clf.manifest.preprocessing, target_size=(width, height))
    ours = clf.preprocess(decode_image(path.read_bytes(), max_pixels=10**8))
    np.testing.assert_array_equal(ours, reference.from_path(str(path)))


def test_xception_mode_scales_to_minus_one_one():
    clf = _classifier()
    batch = clf.preprocess(decode_image(image_bytes("PNG", color=(255, 0, 255)), max_pixels=10**8))
    assert batch.min() == -1.0 and batch.max() == 1.0
