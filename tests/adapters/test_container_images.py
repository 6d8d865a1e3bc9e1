"""The container images (the Lambda image and the Azure backfill job's) are built from the repository's root, where
.dockerignore lets only what they need into the build context: every file a COPY names must be let in, and every
file the shipped manifest names (the model, its statistics) must be copied, or the image fails to build or to load
the model. No Docker daemon here: the rules are read as Docker reads them for these simple patterns."""

import fnmatch
import json

import pytest

from tests.helpers import MANIFEST, ROOT

DOCKERFILES = ["Dockerfile", "azure/backfill.Dockerfile"]


def context_allows(path: str) -> bool:
    """Docker's .dockerignore: each line a pattern, a later line wins, ``!`` lets back in; a folder pattern
    covers what is under it."""
    allowed = True
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keep, pattern = line.startswith("!"), line.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes) or fnmatch.fnmatch(path, pattern):
            allowed = keep
    return allowed


def copied(dockerfile: str) -> list[str]:
    sources = []
    for line in (ROOT / dockerfile).read_text().splitlines():
        if line.startswith("COPY "):
            sources += [s for s in line.split()[1:-1] if not s.startswith("--")]
    return sources


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_every_copied_file_is_in_the_build_context(dockerfile):
    for source in copied(dockerfile):
        files = (
            [source]
            if (ROOT / source).is_file()
            else [str(p.relative_to(ROOT)) for p in (ROOT / source).rglob("*.py") if "__pycache__" not in p.parts]
        )
        assert files, f"{dockerfile}: {source} does not exist"
        for path in files:
            assert context_allows(path), f"{dockerfile} copies {path}, which .dockerignore keeps out"


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_every_file_the_manifest_names_is_shipped(dockerfile):
    manifest = json.loads(MANIFEST.read_text())
    named = [manifest["model_file"], manifest["novelty"]["statistics_file"], manifest["gate"]["model_file"]]
    named.append(MANIFEST.name)
    for name in named:
        assert f"model/{name}" in copied(dockerfile), f"{dockerfile} does not ship model/{name}"


def test_the_rules_are_read_as_docker_reads_them():
    assert not context_allows("tests/helpers.py") and not context_allows("lab/novelty.py")
    assert context_allows("core/model.py") and context_allows("model/clothing-model-novelty.npz")
    assert not context_allows("core/__pycache__/model.cpython-311.pyc")
