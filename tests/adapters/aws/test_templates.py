"""The packaged templates and the resolved configurations: what each --param reaches, what is refused and how,
the storage trigger's resources, the container-image route, and cfn-lint's verdict on every template."""

import json
import subprocess

import pytest

from tests.adapters.aws.sls_packages import PACKAGES, template_resources
from tests.helpers import ROOT
from tests.serverless import run_serverless, sls_env


def resolved(sls, *args) -> dict:
    proc = run_serverless([sls, "print", *args, "--format", "json"], timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout[proc.stdout.index("{") :])


def test_cfn_lint_accepts_every_template(packages):
    """AWS's own template linter (its resource specifications): RetainExceptOnCreate, the stage and queue settings.
    One run for every package's template (it names the file of each finding): its specifications load once."""
    paths = [str(packages[name] / "cloudformation-template-update-stack.json") for name in sorted(PACKAGES)]
    # W3005: the framework states a DependsOn that a Ref or GetAtt already implies (harmless, not ours to change)
    command = [str(ROOT / ".venv" / "bin" / "cfn-lint"), "--ignore-checks", "W3005", "--", *paths]
    proc = subprocess.run(command, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# Each --param is checked before the configuration is resolved (plugins/params.js): a misspelt name was ignored,
# and a value outside api's or arch's list ended in the framework's "Value not found at "self" source".
@pytest.mark.parametrize(
    "param, message",
    [
        ("api=htp", '--param="api=htp": api must be one of rest, http, url, url-iam'),
        ("arch=arm", '--param="arch=arm": arch must be one of x86_64, arm64'),
        ("apii=http", '--param="apii=http": no parameter "apii". The parameters: api, arch, python, apiKey,'),
        ("rateLimit=0", '--param="rateLimit=0": rateLimit must be a whole number of requests per second, at least 1'),
        ("burstLimit=many", '--param="burstLimit=many": burstLimit must be a whole number of requests, at least 1'),
        ("maxConcurrency=0", "maxConcurrency must be a whole number of concurrent executions, at least 1"),
        ("snapStart=yes", '--param="snapStart=yes": snapStart must be one of true, false'),
        ("logRetentionDays=31", "logRetentionDays must be one of 1, 3, 5, 7, 14, 30, 60, 90, 120,"),
    ],
)
def test_a_mistyped_param_is_refused_naming_it_and_its_allowed_values(sls, tmp_path, param, message):
    proc = run_serverless([sls, "package", "--package", str(tmp_path), f"--param={param}"], timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 and message in output, output[-2000:]
    assert "Value not found" not in output
    assert not (tmp_path / "clothing-classifier.zip").exists()  # refused before any work


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
    # `serverless remove`, or a change that replaces the bucket, keeps it and the photos in it; a first deploy
    # that rolls back deletes the (empty) bucket it made, so that the same deploy can be retried with that name
    assert bucket["DeletionPolicy"] == "RetainExceptOnCreate" and bucket["UpdateReplacePolicy"] == "Retain"
    assert bucket["Properties"]["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True
    )
    (encryption,) = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption == {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    assert s3["s3:ListBucket"]["Condition"] == {"StringLike": {"s3:prefix": ["uploads/*"]}}
    invoke_config = next(r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig")
    assert invoke_config["MaximumRetryAttempts"] == 2
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["UploadFailures", "Arn"]}
    assert resources["UploadFailures"]["Type"] == "AWS::SQS::Queue"
    assert resources["UploadFailures"]["Properties"]["SqsManagedSseEnabled"] is True  # encrypted at rest
    # and the default package has none of it
    assert not any(r["Type"] == "AWS::SQS::Queue" for r in template_resources(packages["rest"]).values())


@pytest.mark.parametrize(
    "params, message",
    [
        (["--param=bucket=Not_A_Bucket"], "bucket must be an S3 bucket name"),
        (["--param=bucket=ok-bucket", "--param=resultsPrefix=uploads/results/"], "must not overlap"),
        (["--param=bucket=ok-bucket", "--param=uploadsPrefix=/abs/"], "uploadsPrefix must be a folder of keys"),
    ],
)
def test_a_storage_trigger_that_could_not_work_or_would_loop_is_refused(sls, tmp_path, params, message):
    proc = run_serverless([sls, "package", "--package", str(tmp_path), *params], timeout=120)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr


def test_deploy_function_is_refused_with_snapstart(sls, tmp_path):
    """`deploy function` updates $LATEST, which no entry point invokes with SnapStart: refused with the reason,
    before any AWS call. Without SnapStart it goes on to AWS (here a closed port, so it fails there instead)."""
    env = sls_env(AWS_ENDPOINT_URL="http://127.0.0.1:9", AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    refusal = "`serverless deploy function` updates $LATEST only, and with SnapStart"
    outputs = {}
    for snap_start in ("true", "false"):
        command = [sls, "deploy", "function", "-f", "predict", f"--param=snapStart={snap_start}"]
        proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
        assert proc.returncode != 0
        outputs[snap_start] = proc.stdout + proc.stderr
    assert refusal in outputs["true"] and "Run `serverless deploy`" in outputs["true"]
    assert refusal not in outputs["false"]


@pytest.mark.parametrize("api", ["rest", "http", "url"])
def test_container_image_route_has_the_zip_routes_front_door_and_limits(sls, api):
    """serverless-container.yml reads its front door, limits and settings from serverless.yml: the same methods
    (GET, OPTIONS and all), the stage throttle's plugin, version pruning, log retention, and an ECR rule that
    expires all but the newest images. (`serverless package` builds an image with Docker: compared resolved.)"""
    params = (f"--param=api={api}", "--param=rateLimit=4", "--param=keepVersions=2", "--param=logRetentionDays=7")
    image, zipped = resolved(sls, "--config", "serverless-container.yml", *params), resolved(sls, *params)
    assert image["functions"]["predict"]["image"]["name"] == "clothing"
    for key in ("events", "url", "reservedConcurrency"):
        assert image["functions"]["predict"].get(key) == zipped["functions"]["predict"].get(key), key
    # the API key is named after each service
    assert image["provider"]["apiGateway"].pop("apiKeys") == ["clothing-classifier-image-dev-key"]
    zipped["provider"]["apiGateway"].pop("apiKeys")
    for key in ("apiGateway", "tracing", "memorySize", "timeout", "environment", "architecture", "deploymentBucket"):
        assert image["provider"][key] == zipped["provider"][key], key
    assert image["provider"]["pruneFunctionVersions"] == {"number": 2} == zipped["provider"]["pruneFunctionVersions"]
    assert image["provider"]["logRetentionInDays"] == 7 == zipped["provider"]["logRetentionInDays"]
    assert image["provider"]["ecr"]["maxImageCount"] == 2
    assert image["custom"]["frontDoorLimits"] == {"rateLimit": "4", "burstLimit": 50}  # CLI params are text
    assert {"./plugins/params", "./plugins/front-door-limits"} <= set(image["plugins"])
    if api == "rest":
        methods = sorted(e["http"]["method"] for e in image["functions"]["predict"]["events"])
        assert methods == ["any", "options"]


def test_container_image_route_refuses_what_an_image_cannot_have(sls):
    proc = run_serverless([sls, "print", "--config", "serverless-container.yml", "--param=snapStart=true"], 120)
    assert proc.returncode != 0
    refusal = '"snapStart" applies to the zip route (serverless.yml), not to a container image'
    assert refusal in proc.stdout + proc.stderr


def test_dockerfile_ships_what_the_zip_ships():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "FROM public.ecr.aws/lambda/python:3.12" in dockerfile
    assert 'CMD ["handlers.aws.lambda_handler"]' in dockerfile
    shipped = (
        "model/clothing-model.tflite",
        "model/clothing-model.json",
        "model/clothing-model-novelty.npz",
        "model/imagenet-gate.tflite",
    )
    for path in ("core/", "handlers/", *shipped, "requirements.txt"):
        assert path in dockerfile and (ROOT / path).exists()


def test_a_param_the_configuration_declares_is_accepted(sls, tmp_path):
    """A parameter added to params.default needs no entry in plugins/params.js: it is known, and a true/false
    default makes it true/false only."""
    from tests.serverless import copy_service

    service = copy_service(tmp_path / "service")
    config = service / "serverless.yml"
    config.write_text(
        config.read_text().replace("params:\n  default:\n", "params:\n  default:\n    extra: 'false'\n", 1)
    )
    accepted = run_serverless([sls, "print", "--param=extra=true"], timeout=120, cwd=service)
    assert accepted.returncode == 0, accepted.stdout[-2000:] + accepted.stderr[-2000:]
    refused = run_serverless([sls, "print", "--param=extra=yes"], timeout=120, cwd=service)
    assert refused.returncode != 0 and '--param="extra=yes": extra must be one of true, false' in refused.stdout
