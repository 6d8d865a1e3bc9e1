"""lab.imagenet_gate end to end on photos that ship with the repository and scikit-image: the gate built from the
ImageNet weights, fitted over five folds, and shipped beside a copy of the model."""

import json
import shutil

import pytest

from core.manifest import load_manifest, sha256_of
from core.model import Classifier
from lab import imagenet_gate
from tests.core.test_novelty import CAT, details_of
from tests.helpers import MANIFEST, ROOT, photo_views
from tests.lab.conftest import run_main, run_tool


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    """The ten labels, 8 train and 2 validation photos each (views of the sample photos), and a not-clothing
    folder of two groups, one of them kept apart."""
    import skimage

    root = tmp_path_factory.mktemp("gate")
    samples = [ROOT / "samples" / "pants.jpg", ROOT / "samples" / "t-shirt.jpg"]
    for i, label in enumerate(load_manifest(MANIFEST).labels):
        views = photo_views(samples[i % len(samples)], 10, seed=i)
        for j, view in enumerate(views):
            folder = root / "data" / ("train" if j < 8 else "validation") / label
            folder.mkdir(parents=True, exist_ok=True)
            view.save(folder / f"{label}-{j}.jpg", quality=90)
    for group, names in {"skimage": ["coffee.png", "rocket.jpg", "horse.png"], "people": ["astronaut.png"]}.items():
        (root / "dev" / group).mkdir(parents=True)
        for name in names:
            shutil.copy(f"{skimage.data_dir}/{name}", root / "dev" / group / name)
    model = root / "model"
    model.mkdir()
    manifest = load_manifest(MANIFEST)
    for path in (MANIFEST, manifest.model_path, manifest.statistics_path):
        shutil.copy(path, model)
    data = json.loads((model / MANIFEST.name).read_text())
    del data["gate"]  # the model as it is before the gate is shipped
    (model / MANIFEST.name).write_text(json.dumps(data))
    return root


def test_fitting_and_shipping_the_gate(small_dataset, capsys, pants_photo):
    root = small_dataset
    manifest = root / "model" / MANIFEST.name
    report_path = root / "report.json"
    shipped_gate = load_manifest(MANIFEST).gate_path
    args = ["--data-dir", root / "data", "--not-clothing", root / "dev", "--manifest", manifest]
    novelty = ROOT / "lab" / "results" / "novelty.json"
    code, out, err = run_main(
        imagenet_gate.main,
        capsys,
        *args,
        *("--gate", shipped_gate, "--json", report_path, "--novelty-report", novelty, "--write"),
    )
    assert code == 0, err
    report = json.loads(report_path.read_text())
    assert report["photos"] == 100 and len(report["per_fold"]) == 5
    folds = report["per_fold"]  # two photos of each label each, 20 in all: the pooled share is their mean
    assert report["held_out_flagged_by_the_gate"] == pytest.approx(sum(f["held_out_flagged"] for f in folds) / 5)
    assert all(1 <= f["classes"] <= 80 for f in folds)  # fitted on the other 80
    assert set(report["gate_alone"]["by_group"]) == {"skimage", "people"}
    for rule in ("gate_alone", "distance_alone", "distance_and_gate"):  # the people are reported, never counted
        rates = report[rule]
        assert rates["development_set_not_clothing"] == rates["by_group"]["skimage"], rule
    held = json.loads(novelty.read_text())["held_out"]
    worst = report["held_out_with_the_gate"]
    assert worst["not_clothing_at_most"] == round(held["not_clothing"] + report["held_out_flagged_by_the_gate"], 4)
    gate = report["held_out_flagged_by_the_gate"]
    assert worst["clothing_at_least"] == round(held["clothing"] - gate, 4)
    right = held["clothing"] * held["clothing_right"]  # every photo the gate took was a right "clothing" answer
    assert worst["clothing_right_at_least"] == round((right - gate) / (held["clothing"] - gate), 4)
    gate = json.loads(manifest.read_text())["gate"]
    assert gate["classes"] == report["classes"] and gate["threshold"] == report["threshold"]
    assert gate["sha256"] == sha256_of(root / "model" / gate["model_file"])
    classifier = Classifier(manifest)
    assert details_of(classifier, CAT.read_bytes())["verdict"] == "not_clothing"
    assert details_of(classifier, pants_photo.read_bytes())["label"] == "pants"


def test_errors_are_one_line(tmp_path):
    proc = run_tool(
        "lab.imagenet_gate",
        "--data-dir",
        tmp_path,
        "--not-clothing",
        tmp_path / "none",
        "--gate",
        load_manifest(MANIFEST).gate_path,
        "--manifest",
        MANIFEST,
    )
    assert proc.returncode == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_the_gate_is_built_from_the_imagenet_weights(tmp_path, image_dir):
    """Converted to int8 at the classifier's input size after the known-photo check; 1,000 outputs."""
    from core.interpreter import find_runtime

    (tmp_path / "train").symlink_to(image_dir)
    gate = tmp_path / "gate.tflite"
    gate.write_bytes(imagenet_gate.build_gate(tmp_path, (192, 192)))
    interpreter = find_runtime()[1](model_path=str(gate))
    interpreter.allocate_tensors()
    assert interpreter.get_input_details()[0]["shape"].tolist() == [1, 192, 192, 3]
    assert interpreter.get_output_details()[0]["shape"].tolist() == [1, 1000]
