"""The array fed to the model equals keras_image_helper's, byte for byte, for the same file (core/preprocess.py
prepares it without importing the library)."""

import subprocess
import sys

import numpy as np
import pytest
from keras_image_helper import create_preprocessor
from PIL import Image

from core.images import decode_image
from core.model import Classifier
from core.preprocess import MODES, Preprocessor
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


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("image_mode", ["RGB", "L", "P", "RGBA", "LA", "CMYK", "I;16"])
def test_every_mode_matches_keras_image_helper_on_every_image_mode(mode, image_mode):
    with Image.open(ROOT / "samples" / "pants.jpg") as img:
        image = img.convert(image_mode) if image_mode != "I;16" else img.convert("L").convert("I;16")
    target = (192, 160)  # (width, height): not square, so a swapped pair would show
    ours = Preprocessor(mode, target)(image)
    expected = create_preprocessor(mode, target_size=target).convert_to_tensor(image)
    assert ours.dtype == expected.dtype == np.float32 and ours.shape == (1, 160, 192, 3)
    np.testing.assert_array_equal(ours, expected)


def test_an_unknown_mode_is_refused_when_made():
    with pytest.raises(ValueError, match="unknown preprocessing 'torch'"):
        Preprocessor("torch", (192, 192))


def test_serving_imports_no_url_machinery_it_never_uses():
    """keras_image_helper's urllib.request (with http.client and email) is cold-start CPU that serving never uses:
    a warm classification through the Lambda handler imports none of it."""
    script = (
        "import base64, sys\n"
        "from handlers.aws import lambda_handler\n"
        f"image = base64.b64encode(open({str(ROOT / 'samples' / 'pants.jpg')!r}, 'rb').read()).decode()\n"
        "answer = lambda_handler({'image': image}, None)\n"
        "assert max(answer, key=answer.get) == 'pants', answer\n"
        "print(sorted(m for m in ('keras_image_helper', 'urllib.request', 'http.client', 'email') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("size", [(400, 533), (641, 479), (1999, 1501), (3001, 3999)])
@pytest.mark.parametrize("image_mode", ["RGB", "L"])
def test_jpeg_pixels_sampled_where_they_lie_match_keras_image_helper(tmp_path, size, image_mode):
    """Serving's JPEG path: libjpeg-turbo's array, never a Pillow image, sampled by Pillow's own indices."""
    from core.images import load_pixels, open_image

    clf = _classifier()
    height, width = clf.manifest.input_size
    with Image.open(ROOT / "samples" / "t-shirt.jpg") as img:
        path = tmp_path / "photo.jpg"
        img.convert(image_mode).resize(size, Image.Resampling.BICUBIC).save(path, quality=90)
    pixels = load_pixels(open_image(path.read_bytes(), 10**8))
    assert isinstance(pixels, np.ndarray)
    reference = create_preprocessor(clf.manifest.preprocessing, target_size=(width, height))
    np.testing.assert_array_equal(clf.preprocess(pixels), reference.from_path(str(path)))


def test_a_reduced_decode_is_sampled_as_keras_samples_every_image():
    """A big JPEG the DCT reduced is sampled by Pillow's nearest-neighbour rows and columns of the reduced pixels,
    as Keras samples any image: only the decode differs from the exact path."""
    import io

    import simplejpeg

    from core.model import DecodeRules

    with Image.open(ROOT / "samples" / "pants.jpg") as img:
        big = img.convert("RGB").resize((img.width * 4, img.height * 4), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    big.save(out, "JPEG", quality=90)
    data = out.getvalue()
    clf = _classifier()
    rules = DecodeRules.for_input(clf.loaded_manifest().input_size, 10**8, exact_max_pixels=2_000_000)
    reduced = simplejpeg.decode_jpeg(data, min_height=192, min_width=192)
    assert reduced.shape[:2] == (267, 200)  # an eighth of the photo, still over the input's 192 pixels
    keras = np.asarray(Image.fromarray(reduced).resize((192, 192), Image.Resampling.NEAREST))
    np.testing.assert_array_equal(clf.sample_file(data, rules), keras)
    exact = DecodeRules.for_input(clf.loaded_manifest().input_size, 10**8, None, exact=True)
    assert not np.array_equal(clf.sample_file(data, exact), keras)  # the full decode samples other pixels


def test_the_model_decodes_big_jpegs_to_at_least_its_input():
    from core.model import DecodeRules

    rules = DecodeRules.for_input((192, 160), 10**8, exact_max_pixels=2_000_000)
    assert rules.draft_size == (160, 192) and rules.draft_above_pixels == 2_000_000  # (width, height)
    assert DecodeRules.for_input((192, 160), 10**8, 2_000_000, exact=True).draft_size is None


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("quantization", [(np.int8, (2 / 255, -1)), (np.uint8, (0.9, 3)), (np.int8, (0.5, 10))])
def test_the_lookup_table_gives_the_quantized_batch_of_the_float_one(mode, quantization):
    from core.model import _quantize

    dtype, scale_zero = quantization
    detail = {"dtype": dtype, "quantization": scale_zero}
    prep = Preprocessor(mode, (192, 160))
    quantized = prep.lookup(lambda batch: _quantize(batch, detail))
    for seed in range(3):  # every pixel value in every channel, many times over
        pixels = np.random.default_rng(seed).integers(0, 256, (160, 192, 3), dtype=np.uint8)
        expected = _quantize(prep.scale(pixels), detail)
        assert expected.dtype == dtype
        np.testing.assert_array_equal(quantized(pixels), expected)


def test_an_integer_model_is_fed_the_batch_quantizing_the_reference_gives():
    from core.model import _quantize

    clf = _classifier()
    detail = clf._interpreter().get_input_details()[0]
    assert np.issubdtype(detail["dtype"], np.integer)  # the shipped model is int8
    with Image.open(ROOT / "samples" / "pants.jpg") as img:
        rgb = img.convert("RGB")
    for image in (rgb, np.asarray(rgb)):
        batch = clf.model_input(clf.sample(image))
        assert batch.dtype == detail["dtype"]
        np.testing.assert_array_equal(batch, _quantize(clf.preprocess(image), detail))
        np.testing.assert_array_equal(clf.predict(batch), clf.predict(clf.preprocess(image)))
