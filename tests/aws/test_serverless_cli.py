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

from tests.helpers import ROOT, http_post
from tests.serverless import copy_service, offline_server, require_cli, run_serverless, sls_env

EVENTS = sorted(p.name for p in (ROOT / "tests" / "events").glob("*.json"))


@pytest.fixture(scope="module")
def sls():
    return require_cli()


def package(sls, out, *params, cwd=ROOT):
    proc = run_serverless([sls, "package", "--package", str(out), *params], timeout=900, cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # No configuration warnings (Framework v3 warned about python3.12 on every run).
    assert "Warning" not in proc.stdout + proc.stderr and "Invalid configuration" not in proc.stdout + proc.stderr
    return out


# Every `serverless package` the tests need, each ~30 s: run at once, each from its own copy of the service (the
# requirements plugin keeps its work in the service's .serverless folder), instead of one after another.
# The http, url and py311 packages also carry non-default options (limits, SnapStart), to show that each reaches
# the template; rest then py311 are deployed one after the other (test_deploy_twice_then_remove).
PACKAGES = {
    "rest": (),
    "http": ("--param=api=http", "--param=rateLimit=5", "--param=burstLimit=10", "--param=snapStart=true"),
    "url": ("--param=api=url-iam", "--param=maxConcurrency=3", "--param=tracing=true"),
    "py311": (
        "--param=python=3.11",
        "--param=bucket=clothing-uploads-example",
        "--param=rateLimit=7",
        "--param=burstLimit=9",
        "--param=keepVersions=1",
    ),
}


@pytest.fixture(scope="module")
def packages(sls, tmp_path_factory):
    root = tmp_path_factory.mktemp("sls-packages")

    def build(name):
        service = copy_service(root / name / "service")
        return name, package(sls, root / name / "out", *PACKAGES[name], cwd=service)

    with ThreadPoolExecutor(max_workers=len(PACKAGES)) as pool:
        return dict(pool.map(build, PACKAGES))


@pytest.fixture(scope="module")
def packaged(packages):
    return packages["rest"]


def template_resources(out):
    template = json.loads((out / "cloudformation-template-update-stack.json").read_text())
    return template["Resources"]


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


@pytest.mark.parametrize(
    "param, message",
    [
        ("rateLimit=0", 'rateLimit=0": requests per second must be a whole number of at least 1'),
        ("burstLimit=many", "'provider.apiGateway.usagePlan.throttle.burstLimit': must be integer"),  # the framework's
        ("maxConcurrency=0", 'maxConcurrency=0" (function predict): a whole number of at least 1, or leave it out'),
    ],
)
def test_a_limit_that_would_not_cap_or_would_stop_the_function_is_refused(sls, tmp_path, param, message):
    proc = run_serverless([sls, "package", "--package", str(tmp_path), f"--param={param}"], timeout=120)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (tmp_path / "clothing-classifier.zip").exists()  # refused before any work


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
    """Each shared object's glibc and libstdc++ versions against the runtime's (README, "arm64"): x86_64 (the zip
    itself) runs on any AL2023 release; LiteRT's arm64 libraries need GCC 12's libstdc++ (3.4.30), which AL2023 has
    had since its 2025 core-library update. A wheel that needs more fails here before it fails on Lambda."""
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


def test_offline_raw_image_body(offline, pants_photo):
    # serverless-offline 13 passes binary bodies only for octet-stream (API Gateway: binaryMediaTypes).
    status, body = http_post(offline, pants_photo.read_bytes(), "application/octet-stream")
    assert status == 200 and max(body, key=body.get) == "pants"


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


def test_container_image_route_is_consistent(sls):
    """serverless-container.yml resolves, and the Dockerfile ships what the zip route ships."""
    proc = run_serverless([sls, "print", "--config", "serverless-container.yml", "--format", "json"], timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    config = json.loads(proc.stdout[proc.stdout.index("{") :])
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


def test_storage_trigger_template(packages):
    """--param="bucket=NAME" (in the py311 package): uploads/ notifications, the least privilege, retries then a
    dead-letter queue."""
    resources = template_resources(packages["py311"])
    bucket = next(r for r in resources.values() if r["Properties"].get("BucketName") == "clothing-uploads-example")
    (notification,) = bucket["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    assert notification["Event"] == "s3:ObjectCreated:*"
    assert notification["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "uploads/"}]
    permission = next(
        r["Properties"] for r in resources.values() if r["Properties"].get("Principal") == "s3.amazonaws.com"
    )
    assert permission["Action"] == "lambda:InvokeFunction"
    statements = resources["IamRoleLambdaExecution"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    s3 = {action: s for s in statements for action in s["Action"] if action.startswith("s3:")}
    assert set(s3) == {"s3:GetObject", "s3:PutObject", "s3:ListBucket"}  # nothing else of the bucket
    arn = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":s3:::clothing-uploads-example"]]}  # any partition
    assert s3["s3:ListBucket"]["Resource"] == arn
    arn["Fn::Join"][1][2] += "/uploads/*"
    assert s3["s3:GetObject"]["Resource"] == arn
    arn["Fn::Join"][1][2] = arn["Fn::Join"][1][2].replace("/uploads/", "/results/")
    assert s3["s3:PutObject"]["Resource"] == arn
    # `serverless remove`, or a change that replaces the bucket, keeps it and the photos in it
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    assert s3["s3:ListBucket"]["Condition"] == {"StringLike": {"s3:prefix": ["uploads/*"]}}
    invoke_config = next(r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig")
    assert invoke_config["MaximumRetryAttempts"] == 2
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["UploadFailures", "Arn"]}
    assert resources["UploadFailures"]["Type"] == "AWS::SQS::Queue"
    # and the default package has none of it
    assert not any(r["Type"] == "AWS::SQS::Queue" for r in template_resources(packages["rest"]).values())


@pytest.mark.parametrize(
    "params, message",
    [
        (["--param=bucket=Not_A_Bucket"], "not an S3 bucket name"),
        (["--param=bucket=ok-bucket", "--param=resultsPrefix=uploads/results/"], "must not overlap"),
        (["--param=bucket=ok-bucket", "--param=uploadsPrefix=/abs/"], "a folder of keys"),
    ],
)
def test_a_storage_trigger_that_could_not_work_or_would_loop_is_refused(sls, tmp_path, params, message):
    proc = run_serverless([sls, "package", "--package", str(tmp_path), *params], timeout=120)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr


# -- `serverless deploy` twice, then `serverless remove`, against moto's server on loopback ----------------------
# osls and the AWS SDK it uses honour AWS_ENDPOINT_URL. The two deploys are two of the packages above
# (`deploy --package`, as after `serverless package`): the REST API with the default limits, then the same stack
# with other limits, a storage bucket and a changed function. moto enforces few of CloudFormation's rules (it
# accepts a Deployment's StageDescription on a stage that exists, which AWS refuses: every deploy after the first
# failed so), so the template each deploy sent is checked too.
REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION}


def aws_client(endpoint: str, name: str):
    import boto3

    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client(name, endpoint_url=endpoint, region_name=REGION, **keys)


def stage_throttle(endpoint: str) -> dict:
    apigateway = aws_client(endpoint, "apigateway")
    (api,) = apigateway.get_rest_apis()["items"]
    stage = apigateway.get_stage(restApiId=api["id"], stageName="dev")
    return {k: v for k, v in stage["methodSettings"]["*/*"].items() if k.startswith("throttling")}


def test_deploy_twice_then_remove(sls, packages, moto_endpoint, tmp_path):
    from tests.aws.moto_gaps import fill_gaps

    fill_gaps()  # before the first stack: the resource types moto's CloudFormation lacks
    service = copy_service(tmp_path / "service")
    env = sls_env(AWS_ENDPOINT_URL=moto_endpoint, **FAKE_CREDENTIALS)

    def serverless(*args) -> str:
        proc = subprocess.run([sls, *args], cwd=service, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout + proc.stderr

    for name in ("rest", "py311"):
        deployment = next(r for r in template_resources(packages[name]).values() if r["Type"].endswith("Deployment"))
        assert "StageDescription" not in deployment["Properties"]  # what each deploy sends CloudFormation

    assert "Front door: stage dev throttled at 20 requests/s" in serverless("deploy", "--package", packages["rest"])
    assert stage_throttle(moto_endpoint) == {"throttlingRateLimit": 20.0, "throttlingBurstLimit": 50}

    # The second deploy: a new Deployment of the existing stage, new limits, a bucket, a changed function
    output = serverless("deploy", "--package", packages["py311"])
    assert stage_throttle(moto_endpoint) == {"throttlingRateLimit": 7.0, "throttlingBurstLimit": 9}
    apigateway = aws_client(moto_endpoint, "apigateway")
    (api,) = apigateway.get_rest_apis()["items"]
    assert len(apigateway.get_deployments(restApiId=api["id"])["items"]) == 2
    # keepVersions=1: one published version at most. (moto applies a change set's resources in no fixed order, so
    # the new version is sometimes published from the old configuration, which Lambda does not publish twice.)
    versions = aws_client(moto_endpoint, "lambda").list_versions_by_function(
        FunctionName="clothing-classifier-dev-predict"
    )
    published = [v["Version"] for v in versions["Versions"] if v["Version"] != "$LATEST"]
    assert len(published) == 1 and ("Pruned 1 function version" in output) == (published == ["2"]), output

    s3 = aws_client(moto_endpoint, "s3")
    s3.put_object(Bucket="clothing-uploads-example", Key="uploads/mine.jpg", Body=b"a user's photo")
    serverless("remove", "--param=bucket=clothing-uploads-example")
    stacks = aws_client(moto_endpoint, "cloudformation").list_stacks()["StackSummaries"]
    assert {s["StackStatus"] for s in stacks if s["StackName"] == "clothing-classifier-dev"} == {"DELETE_COMPLETE"}
    # the bucket the stack made is kept, and the user's photo in it
    assert s3.get_object(Bucket="clothing-uploads-example", Key="uploads/mine.jpg")["Body"].read() == b"a user's photo"
