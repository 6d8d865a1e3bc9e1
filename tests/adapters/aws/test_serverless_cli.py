"""The real serverless CLI (osls, the open-source continuation of Framework v3): package (templates for each
front door, the zip), invoke local exactly as the README types it, and offline over real HTTP."""

import base64
import json
import os
import shutil
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.adapters.aws.sls_packages import template_resources
from tests.helpers import ROOT, http_post
from tests.serverless import offline_server, run_serverless

EVENTS = sorted(p.name for p in (ROOT / "tests" / "events").glob("*.json"))


@pytest.fixture(scope="module")
def packaged(packages):
    return packages["rest"]


def test_template_has_the_function_and_the_endpoint(packaged):
    resources = template_resources(packaged)
    functions = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    assert len(functions) == 1
    fn = functions[0]
    assert fn["Runtime"] == "python3.12"
    assert fn["MemorySize"] == 1024 and fn["Timeout"] == 29
    assert fn["Handler"] == "handlers/aws.lambda_handler"
    assert fn["Architectures"] == ["x86_64"]
    paths = [r["Properties"]["PathPart"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Resource"]
    methods = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGateway::Method"]
    assert paths == ["predict"]
    # GET usage, OPTIONS and 405s answered by the function; OPTIONS on its own so it stays public with a key
    assert sorted(m["HttpMethod"] for m in methods) == ["ANY", "OPTIONS"]
    assert {m["Integration"]["Type"] for m in methods} == {"AWS_PROXY"}
    assert {m["ApiKeyRequired"] for m in methods} == {False}  # public by default, as in the book
    kinds = {r["Type"] for r in resources.values()}
    assert {"AWS::ApiGateway::ApiKey", "AWS::ApiGateway::UsagePlan"} <= kinds
    plan = next(r for r in resources.values() if r["Type"] == "AWS::ApiGateway::UsagePlan")["Properties"]
    assert plan["Throttle"] == {"BurstLimit": 50, "RateLimit": 20}  # requests with a key
    assert plan["Quota"] == {"Limit": 100000, "Period": "DAY"}
    # ... and the stage throttles every request, keyless ones too, set after each deploy (test_deploy_twice_...):
    # never through the Deployment, which CloudFormation refuses to give a StageDescription once the stage exists
    deployment = next(r for r in resources.values() if r["Type"] == "AWS::ApiGateway::Deployment")["Properties"]
    assert deployment["StageName"] == "dev" and "StageDescription" not in deployment
    assert "ReservedConcurrentExecutions" not in fn  # not by default: new accounts cannot reserve any
    assert "SnapStart" not in fn and "AWS::Lambda::Alias" not in {r["Type"] for r in resources.values()}
    assert "TracingConfig" not in fn  # tracing is an option
    (logs,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"]
    assert logs["RetentionInDays"] == 30  # not kept forever (billed per GB a month); --param="logRetentionDays=N"


def test_plain_function_url_is_public(sls):
    proc = run_serverless([sls, "print", "--param=api=url", "--format", "json"], timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert config["functions"]["predict"]["url"] is True and config["functions"]["predict"]["events"] == []


def test_old_versions_are_pruned_after_each_deploy(sls):
    """Each deploy that changes the function publishes a version (with SnapStart, each keeps a billed snapshot):
    osls deletes all but the newest three after the deploy (test_deploy_twice_then_remove runs it)."""
    proc = run_serverless([sls, "print", "--format", "json"], timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert config["provider"]["pruneFunctionVersions"] == {"number": 3}


def test_api_key_can_be_required(sls):
    proc = run_serverless([sls, "print", "--param=apiKey=true", "--format", "json"], timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = json.loads(proc.stdout[proc.stdout.index("{") :])
    any_method, options = (event["http"] for event in config["functions"]["predict"]["events"])
    assert any_method["method"] == "any" and any_method["private"] is True
    assert options["method"] == "options" and options["private"] is False  # a CORS preflight carries no key


@pytest.mark.parametrize(
    "api, gateway_type, route_type",
    [
        ("http", "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Route"),
        ("url-iam", None, "AWS::Lambda::Url"),
    ],
)
def test_http_api_and_function_url_front_doors(packages, api, gateway_type, route_type):
    """The cheaper front doors package too: one route for every method to the same function, no REST API."""
    resources = template_resources(packages["url" if api == "url-iam" else api])
    kinds = [r["Type"] for r in resources.values()]
    assert kinds.count("AWS::Lambda::Function") == 1 and kinds.count(route_type) == 1
    assert "AWS::ApiGateway::RestApi" not in kinds and "AWS::ApiGateway::Method" not in kinds
    if gateway_type:
        route = next(r for r in resources.values() if r["Type"] == route_type)["Properties"]
        assert gateway_type in kinds and route["RouteKey"] == "ANY /predict"
        integration = next(r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Integration")
        assert integration["Properties"]["PayloadFormatVersion"] == "2.0"
        stage = next(r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Stage")["Properties"]
        assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == 5  # --param="rateLimit=5"
        assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 10
        # --param="snapStart=true": snapshots of published versions, and the front door calls the alias
        fn = next(r for r in resources.values() if r["Type"] == "AWS::Lambda::Function")["Properties"]
        assert fn["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        alias = next(r for r in resources.values() if r["Type"] == "AWS::Lambda::Alias")["Properties"]
        assert alias["FunctionVersion"]["Fn::GetAtt"][1] == "Version"
        target = integration["Properties"]["IntegrationUri"]["Fn::Join"][1]
        assert target[-1] == alias["Name"]  # not $LATEST
        (logs,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::LogGroup"]
        assert logs["RetentionInDays"] == 14  # --param="logRetentionDays=14"
    else:
        url = next(r for r in resources.values() if r["Type"] == route_type)["Properties"]
        assert url["AuthType"] == "AWS_IAM"  # api=url-iam; plain api=url is public: test_plain_function_url_is_public
        # a Function URL has no gateway to throttle: reserved concurrency is its cap (--param="maxConcurrency=3")
        fn = next(r for r in resources.values() if r["Type"] == "AWS::Lambda::Function")["Properties"]
        assert fn["ReservedConcurrentExecutions"] == 3
        assert fn["TracingConfig"] == {"Mode": "Active"}  # --param="tracing=true"
        role = next(r for r in resources.values() if r["Type"] == "AWS::IAM::Role")["Properties"]
        statements = role["Policies"][0]["PolicyDocument"]["Statement"]
        assert any("xray:PutTraceSegments" in s["Action"] for s in statements)


def test_zip_holds_the_function_and_nothing_else(packaged):
    path = packaged / "clothing-classifier.zip"
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        unzipped = sum(i.file_size for i in zf.infolist())
    tops = {n.split("/")[0] for n in names}
    for needed in ("core", "handlers", "numpy", "PIL", "ai_edge_litert", "simplejpeg", "urllib3"):
        assert needed in tops, needed
    assert "model/clothing-model.tflite" in names and "model/clothing-model.json" in names
    assert "model/clothing-model-novelty.npz" in names  # the verdict's statistics (core/novelty.py)
    assert "model/imagenet-gate.tflite" in names  # and its second opinion (core/gate.py)
    assert "handlers/aws.py" in names and "core/service.py" in names
    for unwanted in (
        "node_modules",
        "tests",
        "bench",
        "gcp",
        "azure",
        ".venv",
        "tensorflow",
        "torch",
        "skimage",
        "pillow_heif",
        "cli",  # the command line and bulk client: tools, never deployed
    ):
        assert unwanted not in tops, unwanted
    assert not [n for n in names if n.startswith("core/") and n.split("/")[-1] in ("bulk.py", "__main__.py")]
    assert not [n for n in names if n.endswith(".pyc") or "model/runs" in n or n.endswith(".keras")]
    # Linux x86_64 wheels for CPython 3.12, whatever Python packaged it.
    assert any("cpython-312-x86_64-linux-gnu" in n for n in names if n.startswith("numpy/"))
    zipped = path.stat().st_size
    print(f"\nLambda zip: {zipped / 1e6:.1f} MB zipped, {unzipped / 1e6:.1f} MB unzipped")
    assert zipped < 50 * 1024 * 1024 and unzipped < 250 * 1024 * 1024  # Lambda's direct-upload limits


# What Lambda's python3.12 runtime (Amazon Linux 2023) provides: glibc 2.34; libstdc++ from GCC 11 (GLIBCXX_3.4.29)
# until AL2023's 2025 releases moved its core runtime libraries to GCC 14's (GLIBCXX_3.4.33).
AL2023_GLIBC = (2, 34)
GLIBCXX_BEFORE_2025, GLIBCXX_SINCE_2025 = (3, 4, 29), (3, 4, 33)


def required_versions(archives, tmp_path) -> dict[str, dict[str, tuple]]:
    """{shared object in the zips: {"GLIBC": highest version it needs, "GLIBCXX": ...}}, read by objdump."""
    import re

    if not shutil.which("objdump"):
        raise AssertionError("objdump is missing (binutils, installed with gcc)")
    needs = {}
    for archive in archives:
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if not re.search(r"\.so(\.|$)", name):
                    continue
                path = Path(zf.extract(name, tmp_path))
                dump = subprocess.run(["objdump", "-p", str(path)], capture_output=True, text=True, check=True).stdout
                versions: dict[str, tuple] = {}
                for family, version in re.findall(r"\b(GLIBC|GLIBCXX)_(\d+(?:\.\d+)*)\b", dump):
                    versions[family] = max(versions.get(family, ()), tuple(map(int, version.split("."))))
                needs[name] = versions
    return needs


def lambda_wheels(arch: str, out: Path) -> list[Path]:
    """The wheels serverless-python-requirements installs for ``arch`` (serverless.yml's pipArgs, requirements.txt):
    what `serverless package --param="arch=..."` zips, without building the zip."""
    import yaml

    args = yaml.safe_load((ROOT / "serverless.yml").read_text().replace("${param:python}", "3.12"))["custom"]["pipArgs"]
    flags = [part for arg in args[arch] for part in arg.split()]
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-r", str(ROOT / "requirements.txt")]
        + ["-d", str(out), *flags],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return sorted(out.glob("*.whl"))


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_every_library_for_lambda_loads_on_its_python312_runtime(packages, arch, tmp_path):
    """Each shared object's glibc and libstdc++ versions against the runtime's (docs/deploy/aws.md, "arm64"):
    x86_64 (the zip itself) runs on any AL2023 release; LiteRT's arm64 libraries need GCC 12's libstdc++ (3.4.30),
    which AL2023 has had since its 2025 core-library update. A wheel that needs more fails here before it fails on
    Lambda."""
    if arch == "x86_64":
        archives = [packages["rest"] / "clothing-classifier.zip"]
    else:
        archives = lambda_wheels(arch, tmp_path / "wheels")
    needs = required_versions(archives, tmp_path / "libraries")
    assert any("ai_edge_litert/" in name for name in needs)
    assert {name: v["GLIBC"] for name, v in needs.items() if v.get("GLIBC", ()) > AL2023_GLIBC} == {}
    libstdcxx = {name: v["GLIBCXX"] for name, v in needs.items() if "GLIBCXX" in v}
    assert max(libstdcxx.values()) <= GLIBCXX_SINCE_2025
    newer = {name: v for name, v in libstdcxx.items() if v > GLIBCXX_BEFORE_2025}
    if arch == "x86_64":
        assert newer == {}
    else:
        assert set(newer) == {"ai_edge_litert/libLiteRt.so", "ai_edge_litert/libpywrap_litert_common.so"}
        assert set(newer.values()) == {(3, 4, 30)}


def invoke_local(*args, cwd=ROOT):
    """`npx serverless invoke local -f predict ...` as a user types it (after `source .venv/bin/activate`)."""
    proc = run_serverless(["npx", "serverless", "invoke", "local", "-f", "predict", *args], timeout=300, cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Docker" not in proc.stdout + proc.stderr and "Warning" not in proc.stdout + proc.stderr
    return json.loads(proc.stdout[proc.stdout.rindex("\n{\n") + 1 :])  # after the handler's JSON log line


@pytest.fixture(scope="module")
def invoked():
    """`invoke local` of every sample event, all at once (each ~2 s, mostly Node.js starting): event -> result."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda name: invoke_local("--path", f"tests/events/{name}"), EVENTS)
        return dict(zip(EVENTS, results, strict=True))


@pytest.mark.parametrize("name", EVENTS)
def test_invoke_local_with_every_sample_event_as_typed(invoked, name):
    result = invoked[name]
    answer = json.loads(result["body"]) if "statusCode" in result else result
    if name == "direct.json":  # the book's bit.ly URL: the tests have no internet, a user does
        assert "pants" in answer or answer["error"]["type"] == "fetch_failed", answer
    elif name in ("apigw-v1.json", "http-api-v2.json"):  # the same URL inside an HTTP event
        assert result["statusCode"] in (200, 502) and ("pants" in answer or answer["error"]["type"] == "fetch_failed")
    else:  # the committed sample photo
        assert list(answer)[0] == "pants", answer


def test_invoke_local_with_inline_data(pants_photo, tmp_path):
    result = invoke_local(
        "--data", json.dumps({"image": base64.b64encode(pants_photo.read_bytes()).decode(), "top_k": 3})
    )
    assert list(result)[0] == "pants" and len(result) == 3


def without_virtualenv() -> dict:
    """A shell with no virtualenv active: Node.js and the system's directories on PATH, nothing else."""
    node = Path(shutil.which("node") or "node").parent
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHON_BIN", "PYTHONPATH")}
    return dict(env, PATH=f"{node}{os.pathsep}/usr/bin{os.pathsep}/bin", SLS_TELEMETRY_DISABLED="1")


def test_npm_script_runs_the_function_without_an_active_virtualenv():
    """`npm run invoke:local` in a fresh shell: the project's .venv, not the system's python3 (which lacks the
    requirements: ModuleNotFoundError and a Node.js stack trace)."""
    env = without_virtualenv()
    assert subprocess.run(["python3", "-c", "import simplejpeg"], env=env, capture_output=True).returncode
    command = ["npm", "run", "--silent", "invoke:local", "--", "--path", "tests/events/direct-image.json"]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert list(json.loads(proc.stdout[proc.stdout.rindex("\n{\n") + 1 :]))[0] == "pants"


def test_a_python_without_the_requirements_is_named_with_what_to_do(sls, tmp_path):
    """No .venv in the service and none active: the command stops before running the handler, and says why."""
    from tests.serverless import copy_service

    service = copy_service(tmp_path / "service")
    for command in (["invoke", "local", "-f", "predict", "--data", "{}"], ["offline", "start"]):
        proc = subprocess.run(
            [sls, *command], cwd=service, env=without_virtualenv(), capture_output=True, text=True, timeout=120
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0 and "ModuleNotFoundError" not in output, output[-2000:]
        assert "The function's requirements are not installed for python3 (/usr/bin/python3" in output
        assert "`source .venv/bin/activate`" in output


@pytest.fixture(scope="module")
def offline(sls):
    with offline_server(FETCH_ALLOW_NETWORKS="127.0.0.0/8") as (base, output):
        assert "Warning" not in output
        yield base + "/predict"


def test_offline_predicts_from_a_url(offline, image_server, pants_photo):
    base, routes = image_server
    routes["/offline-pants.jpg"] = (200, {"Content-Type": "image/jpeg"}, pants_photo.read_bytes())
    status, body = http_post(offline, json.dumps({"url": base + "/offline-pants.jpg"}).encode())
    assert status == 200, body
    assert len(body) == 10 and max(body, key=body.get) == "pants"


@pytest.mark.parametrize("content_type", ["application/octet-stream", "image/jpeg", "image/jpeg; charset=binary"])
def test_offline_raw_image_body(offline, pants_photo, content_type):
    """Each type binaryMediaTypes lists reaches the function base64-encoded, as through API Gateway: serverless-
    offline itself does so for octet-stream only, and decoded an image/jpeg body as UTF-8 text (a 422)."""
    status, body = http_post(offline, pants_photo.read_bytes(), content_type)
    assert status == 200, body
    assert max(body, key=body.get) == "pants"


@pytest.mark.parametrize(
    "body, content_type, status, kind",
    [
        (b"{not json", "application/json", 400, "bad_request"),
        (b'{"url": "http://169.254.169.254/latest/meta-data/"}', "application/json", 400, "bad_request"),
        (b'{"image": "aGVsbG8="}', "application/json", 422, "invalid_image"),
        (b"<a/>", "application/xml", 415, "unsupported_media_type"),
    ],
)
def test_offline_bad_requests_are_json_4xx(offline, body, content_type, status, kind):
    got_status, got = http_post(offline, body, content_type)
    assert got_status == status and got["error"]["type"] == kind


def test_offline_answers_get_with_the_usage_json(offline):
    """GET is routed to the function (it was a non-JSON 404 when only POST was declared)."""
    import urllib.request

    with urllib.request.urlopen(offline, timeout=30) as response:
        usage = json.loads(response.read())
        assert response.status == 200 and response.headers["Content-Type"].startswith("application/json")
    assert usage["model"]["labels"][4] == "pants"


RUN_FROM_ZIP = """
import base64, json, sys
sys.path.insert(0, sys.argv[1])
from handlers.aws import lambda_handler
event = {"image": base64.b64encode(open(sys.argv[2], "rb").read()).decode(), "top_k": 1}
print(json.dumps(lambda_handler(event, None)))
import numpy, PIL
assert all(m.__file__.startswith(sys.argv[1]) for m in (numpy, PIL)), "imported from outside the zip"
"""


def test_zip_alone_runs_the_function(packages, tmp_path, pants_photo):
    """The slimmed zip is complete: built for this machine's Python (3.11), unzipped, run with no site-packages."""
    out = packages["py311"]
    with zipfile.ZipFile(out / "clothing-classifier.zip") as zf:
        zf.extractall(tmp_path / "unzipped")
    run = subprocess.run(
        [sys.executable, "-S", "-c", RUN_FROM_ZIP, str(tmp_path / "unzipped"), str(pants_photo)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": os.environ["PATH"]},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert list(json.loads(run.stdout.strip().splitlines()[-1])) == ["pants"]
