"""The deployable bundles (make bundle-gcp / bundle-azure): built in a temp dir, installed into fresh virtualenvs
from their own requirements.txt only, then served. Proves each bundle is complete on its own."""

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from scripts.bundle import build
from scripts.local_server import start_functions_framework, stop_server
from tests.helpers import ROOT
from tests.helpers import http_post as post


def fresh_venv(bundle: Path, where: Path) -> Path:
    """A virtualenv with the bundle's requirements alone, installed by this pip into it (``--python``): the same
    packages without the seconds ``ensurepip`` takes to install a pip of its own."""
    venv.EnvBuilder(with_pip=False).create(where)
    python = where / "bin" / "python"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet"]
        + ["-r", str(bundle / "requirements.txt")],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return python


@pytest.mark.parametrize(
    "target, must_have",
    [
        (
            "gcp",
            [
                "main.py",
                "gcs_bucket.py",
                "backfill.py",
                "requirements.txt",
                "core/service.py",
                "model/clothing-model.json",
                "model/clothing-model.tflite",
                "model/clothing-model-novelty.npz",
                "model/imagenet-gate.tflite",
            ],
        ),
        (
            "azure",
            [
                "function_app.py",
                "host.json",
                "requirements.txt",
                "core/service.py",
                "model/clothing-model.json",
                "model/clothing-model.tflite",
                "model/clothing-model-novelty.npz",
                "model/imagenet-gate.tflite",
            ],
        ),
    ],
)
def test_bundle_contents(tmp_path, target, must_have):
    out = build(target, tmp_path / target)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    for name in must_have:
        assert name in files
    assert not [f for f in files if "__pycache__" in f or f.startswith(("tests", "handlers", "node_modules", "cli"))]
    requirements = (out / "requirements.txt").read_text()
    assert all(
        tool not in requirements for tool in ("tensorflow", "torch", "efficientnet", "scikit-image", "pillow-heif")
    )


def test_gcp_bundle_serves_from_its_own_virtualenv(tmp_path, pants_photo):
    bundle = build("gcp", tmp_path / "gcp")
    python = fresh_venv(bundle, tmp_path / "venv")
    proc, url = start_functions_framework(python.parent, bundle / "main.py", bundle)
    try:
        status, body = post(url, pants_photo.read_bytes(), "image/jpeg")
        assert status == 200 and max(body, key=body.get) == "pants"
        status, body = post(url, b'{"url": "file:///etc/passwd"}')
        assert status == 400 and body["error"]["type"] == "bad_request"
    finally:
        stop_server(proc)


AZURE_CALL = """
import base64, json, sys, types
import azure.functions as func
from function_app import app
fn = {f.get_function_name(): f for f in app.get_functions()}["predict"].get_user_function()
body = base64.b64decode(sys.stdin.read())
response = fn(func.HttpRequest(method="POST", url="/api/predict", body=body, headers={"Content-Type": "image/jpeg"},
                               params={"top_k": "1"}), types.SimpleNamespace(invocation_id="bundle-check"))
print(json.dumps({"status": response.status_code, "body": json.loads(response.get_body())}))
"""


def test_azure_bundle_runs_from_its_own_virtualenv(tmp_path, pants_photo):
    import base64

    bundle = build("azure", tmp_path / "azure")
    python = fresh_venv(bundle, tmp_path / "venv")
    proc = subprocess.run(
        [str(python), "-c", AZURE_CALL],
        cwd=bundle,
        input=base64.b64encode(pants_photo.read_bytes()).decode(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"status": 200, "body": {"pants": result["body"]["pants"]}}


def test_bundle_cli(tmp_path):
    proc = subprocess.run(
        [sys.executable, "scripts/bundle.py", "gcp", str(tmp_path / "b")],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "built" in proc.stdout


def test_a_bare_python_builds_the_bundle(tmp_path):
    """A deploy needs no development install: a Python with no package at all (a fresh venv: no numpy, no
    keras-image-helper, nothing of the project's) builds the same bundle."""
    venv.create(tmp_path / "bare", with_pip=False)
    bare = tmp_path / "bare" / "bin" / "python"
    assert subprocess.run([bare, "-I", "-c", "import numpy"], capture_output=True).returncode != 0
    proc = subprocess.run(
        [bare, "-I", "scripts/bundle.py", "azure", str(tmp_path / "b")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "built" in proc.stdout, proc.stderr
    model = tmp_path / "b" / "model"
    for name in ("clothing-model.tflite", "clothing-model-novelty.npz", "imagenet-gate.tflite"):
        assert (model / name).read_bytes() == (ROOT / "model" / name).read_bytes()
    assert (tmp_path / "b" / "function_app.py").is_file() and (tmp_path / "b" / "core" / "service.py").is_file()


def test_a_model_that_is_not_the_manifests_is_refused(tmp_path):
    manifest = json.loads((ROOT / "model" / "clothing-model.json").read_text())
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    (tmp_path / manifest["model_file"]).write_bytes(b"another model")
    proc = subprocess.run(
        [sys.executable, "scripts/bundle.py", "gcp", str(tmp_path / "b"), "--manifest", str(tmp_path / "m.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "SHA-256 is not the one" in proc.stderr and not (tmp_path / "b").exists()
