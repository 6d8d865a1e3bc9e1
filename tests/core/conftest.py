import json
import shutil

import pytest

from core.manifest import load_manifest
from tests.helpers import MANIFEST


@pytest.fixture
def copied(tmp_path):
    """The shipped manifest and every file it names (the model, its novelty statistics, its gate) in a folder of
    their own: a test changes the manifest as JSON, writes it back and loads it. (path, the manifest's JSON)."""
    manifest = load_manifest(MANIFEST)
    for path in (MANIFEST, manifest.model_path, manifest.statistics_path, manifest.gate_path):
        shutil.copy(path, tmp_path)
    path = tmp_path / MANIFEST.name
    return path, json.loads(path.read_text())
