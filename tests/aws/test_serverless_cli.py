"""The real Serverless Framework v3 CLI: package (template and zip), invoke local, and offline over real HTTP."""
import base64
import json
import os
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, http_post

SLS = ROOT / "node_modules" / ".bin" / "serverless"
LOCAL_RUNTIME = "--param=python=3.11"  # v3's invoke local only runs python <= 3.11 without Docker


def sls_env(**extra):
    env = dict(os.environ, SLS_TELEMETRY_DISABLED="1", SLS_NOTIFICATIONS_MODE="off", PYTHON_BIN=sys.executable,
               # invoke local / offline run `python3` from this virtualenv, which has the requirements.
               VIRTUAL_ENV=str(Path(sys.executable).parent.parent), **extra)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


@pytest.fixture(scope="module")
def sls():
    if not SLS.exists():
        pytest.fail("node_modules/.bin/serverless is missing: run `make install` (npm ci)")
    return str(SLS)


@pytest.fixture(scope="module")
def packaged(sls, tmp_path_factory):
    out = tmp_path_factory.mktemp("sls-package")
    proc = subprocess.run([sls, "package", "--package", str(out)], cwd=ROOT, env=sls_env(),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def test_template_has_the_function_and_the_endpoint(packaged):
    template = json.loads((packaged / "cloudformation-template-update-stack.json").read_text())
    resources = template["Resources"]
    functions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == 1
    fn = functions[0]
    assert fn["Runtime"] == "python3.12"
    assert fn["MemorySize"] == 1024 and fn["Timeout"] == 30
    assert fn["Handler"] == "handlers/aws.lambda_handler"
    assert fn["Architectures"] == ["x86_64"]
    paths = [r["Properties"]["PathPart"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Resource"]
    methods = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Method"]
    assert paths == ["predict"]
    assert [m["HttpMethod"] for m in methods] == ["POST"]
    assert methods[0]["Integration"]["Type"] == "AWS_PROXY"
    assert methods[0]["ApiKeyRequired"] is False  # public by default, as in the book
    kinds = {r["Type"] for r in resources.values()}
    assert {"AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlan"} <= kinds
    plan = next(r for r in resources.values() if r["Type"] == "AWS::ApiGateway::UsagePlan")["Properties"]
    assert plan["Throttle"] == {"BurstLimit": 50, "RateLimit": 20}


def test_api_key_can_be_required(sls):
    proc = subprocess.run([sls, "print", "--param=apiKey=true", "--format", "json"], cwd=ROOT, env=sls_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert config["functions"]["predict"]["events"][0]["http"]["private"] is True


def test_zip_holds_the_function_and_nothing_else(packaged):
    path = packaged / "clothing-classifier.zip"
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        unzipped = sum(i.file_size for i in zf.infolist())
    tops = {n.split("/")[0] for n in names}
    for needed in ("core", "handlers", "numpy", "PIL", "ai_edge_litert", "keras_image_helper", "urllib3"):
        assert needed in tops, needed
    assert "model/clothing-model.tflite" in names and "model/clothing-model.json" in names
    assert "handlers/aws.py" in names and "core/service.py" in names
    for unwanted in ("node_modules", "tests", "bench", "gcp", "azure", ".venv", "tensorflow"):
        assert unwanted not in tops, unwanted
    assert not [n for n in names if n.endswith(".pyc") or "model/runs" in n or n.endswith(".keras")]
    # Linux x86_64 wheels for CPython 3.12, whatever Python packaged it.
    assert any("cpython-312-x86_64-linux-gnu" in n for n in names if n.startswith("numpy/"))
    zipped = path.stat().st_size
    print(f"\nLambda zip: {zipped / 1e6:.1f} MB zipped, {unzipped / 1e6:.1f} MB unzipped")
    assert zipped < 50 * 1024 * 1024 and unzipped < 250 * 1024 * 1024  # Lambda's direct-upload limits


def test_invoke_local_with_a_base64_image(sls, pants_photo, tmp_path):
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"image": base64.b64encode(pants_photo.read_bytes()).decode(), "top_k": 3}))
    proc = subprocess.run([sls, "invoke", "local", "-f", "predict", LOCAL_RUNTIME, "--path", str(event)],
                          cwd=ROOT, env=sls_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads(proc.stdout[proc.stdout.rindex("\n{\n") + 1:])  # after the handler's JSON log line
    assert list(result)[0] == "pants" and len(result) == 3


@pytest.fixture(scope="module")
def offline(sls):
    http_port, lambda_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sls, "offline", "start", "--httpPort", str(http_port), "--lambdaPort", str(lambda_port)],
        cwd=ROOT, env=sls_env(FETCH_ALLOW_NETWORKS="127.0.0.0/8"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    output, deadline = [], time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        output.append(line)
        if "Server ready" in line:
            break
        if not line and proc.poll() is not None:
            break
    else:
        line = ""
    if "Server ready" not in line:
        os.killpg(proc.pid, 9)
        pytest.fail("serverless offline did not start:\n" + "".join(output)[-3000:])
    # keep reading: an unread pipe fills up with the function's log lines and blocks the server
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    yield f"http://127.0.0.1:{http_port}/dev/predict"
    os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)


def test_offline_predicts_from_a_url(offline, image_server, pants_photo):
    base, routes = image_server
    routes["/offline-pants.jpg"] = (200, {"Content-Type": "image/jpeg"}, pants_photo.read_bytes())
    status, body = http_post(offline, json.dumps({"url": base + "/offline-pants.jpg"}).encode())
    assert status == 200, body
    assert len(body) == 10 and max(body, key=body.get) == "pants"


def test_offline_raw_image_body(offline, pants_photo):
    # serverless-offline 13 passes binary bodies only for octet-stream (API Gateway: binaryMediaTypes).
    status, body = http_post(offline, pants_photo.read_bytes(), "application/octet-stream")
    assert status == 200 and max(body, key=body.get) == "pants"


@pytest.mark.parametrize("body, content_type, status, kind", [
    (b"{not json", "application/json", 400, "bad_request"),
    (b'{"url": "http://169.254.169.254/latest/meta-data/"}', "application/json", 400, "bad_request"),
    (b'{"image": "aGVsbG8="}', "application/json", 422, "invalid_image"),
    (b"<a/>", "application/xml", 415, "unsupported_media_type"),
])
def test_offline_bad_requests_are_json_4xx(offline, body, content_type, status, kind):
    got_status, got = http_post(offline, body, content_type)
    assert got_status == status and got["error"]["type"] == kind




def test_container_image_route_is_consistent(sls):
    """serverless-container.yml resolves, and the Dockerfile ships what the zip route ships."""
    proc = subprocess.run([sls, "print", "--config", "serverless-container.yml", "--format", "json"], cwd=ROOT,
                          env=sls_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert config["functions"]["predict"]["image"]["name"] == "clothing"
    assert config["provider"]["ecr"]["images"]["clothing"]["path"] == "./"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM public.ecr.aws/lambda/python:3.12" in dockerfile
    assert 'CMD ["handlers.aws.lambda_handler"]' in dockerfile
    for path in ("core/", "handlers/", "model/clothing-model.tflite", "model/clothing-model.json", "requirements.txt"):
        assert path in dockerfile and (ROOT / path).exists()


RUN_FROM_ZIP = """
import base64, json, sys
sys.path.insert(0, sys.argv[1])
from handlers.aws import lambda_handler
event = {"image": base64.b64encode(open(sys.argv[2], "rb").read()).decode(), "top_k": 1}
print(json.dumps(lambda_handler(event, None)))
import numpy, PIL
assert all(m.__file__.startswith(sys.argv[1]) for m in (numpy, PIL)), "imported from outside the zip"
"""


def test_zip_alone_runs_the_function(sls, tmp_path, pants_photo):
    """The slimmed zip is complete: built for this machine's Python (3.11), unzipped, run with no site-packages."""
    out = tmp_path / "pkg"
    proc = subprocess.run([sls, "package", "--package", str(out), "--param=python=3.11"], cwd=ROOT, env=sls_env(),
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with zipfile.ZipFile(out / "clothing-classifier.zip") as zf:
        zf.extractall(tmp_path / "unzipped")
    run = subprocess.run([sys.executable, "-S", "-c", RUN_FROM_ZIP, str(tmp_path / "unzipped"), str(pants_photo)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, env={"PATH": os.environ["PATH"]})
    assert run.returncode == 0, run.stderr[-3000:]
    assert list(json.loads(run.stdout.strip().splitlines()[-1])) == ["pants"]
