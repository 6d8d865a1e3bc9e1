"""Fixtures and helpers shared by the model tools' tests."""

import subprocess
import sys

import pytest

from tests.helpers import ROOT, image_bytes


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory):
    """A few real images (the repository's samples, and dataset photos when available) and generated ones: solid
    colours alone leave a random model's logits nearly tied, so an int8 parity check on them is a coin toss."""
    folder = tmp_path_factory.mktemp("images")
    data = ROOT.parent / "shared" / "data" / "clothing-dataset-small" / "validation"
    photos = sorted(data.glob("*/*.jpg"))[::40][:8] if data.is_dir() else []
    photos += sorted((ROOT / "samples").glob("*.jpg"))
    for i, photo in enumerate(photos):
        (folder / f"photo{i}.jpg").write_bytes(photo.read_bytes())
    for i, color in enumerate([(200, 30, 30), (20, 180, 60), (30, 30, 220), (240, 240, 240)]):
        (folder / f"gen{i}.png").write_bytes(image_bytes("PNG", size=(90, 120), color=color))
    return folder


def run_tool(script: str, *args, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python model/<script> ARGS...`` as a user runs it: exit code, stdout and stderr as text."""
    return subprocess.run(
        [sys.executable, str(ROOT / "model" / script), *map(str, args)], capture_output=True, text=True, timeout=timeout
    )
