"""One version: VERSION names the shipped model's version and the project's; the manifest in model/ and the
packaging read it from there, so a release cannot ship a model under another number."""

import json

from tests.helpers import ROOT


def test_the_shipped_manifest_carries_the_version_in_VERSION():
    version = (ROOT / "VERSION").read_text().strip()
    manifest = json.loads((ROOT / "model" / "clothing-model.json").read_text())
    assert manifest["version"] == version


def test_the_package_and_the_makefile_read_their_version_from_VERSION():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and 'version = { file = "VERSION" }' in pyproject
    assert "\nversion = " not in pyproject.split("[project]")[1].split("\n[")[0]
    assert "MODEL_VERSION ?= $(shell cat VERSION)" in (ROOT / "Makefile").read_text()
