"""`serverless deploy` twice, then `serverless remove`, as a user runs them, against moto's server on loopback (osls
and the AWS SDK it uses honour AWS_ENDPOINT_URL): CloudFormation creates the stack, then updates it with the
framework's new Deployment; the REST API stage's throttle is read back from API Gateway after each deploy; old
function versions are pruned; the storage trigger's bucket and its photos outlive `remove`.

moto enforces few of CloudFormation's rules: it accepts, for one, a Deployment's StageDescription on a stage that
exists, which AWS refuses (every deploy after the first failed so); the template each deploy sent is checked too.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from scripts.local_server import free_port
from tests.serverless import copy_service, require_cli, sls_env

BUCKET = "clothing-photos-deploy-test"
REGION = "us-east-1"


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    """moto's server (CloudFormation, Lambda, API Gateway, S3, IAM, SQS, logs) and a copy of the service."""
    from moto.server import ThreadedMotoServer

    from tests.aws.moto_gaps import fill_gaps

    fill_gaps()
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    service = copy_service(tmp_path_factory.mktemp("deploy") / "service")
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
    }
    yield endpoint, service, env
    server.stop()


def client(endpoint: str, name: str):
    import boto3

    return boto3.client(
        name, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def serverless(service, env, *args, **extra_env) -> str:
    proc = subprocess.run(
        [require_cli(), *args],
        cwd=service,
        env=sls_env(**env, **extra_env),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def stage_throttle(endpoint: str) -> dict:
    apigateway = client(endpoint, "apigateway")
    (api,) = apigateway.get_rest_apis()["items"]
    stage = apigateway.get_stage(restApiId=api["id"], stageName="dev")
    return {k: v for k, v in stage["methodSettings"]["*/*"].items() if k.startswith("throttling")}


def sent_deployments(service) -> list[dict]:
    template = json.loads((service / ".serverless" / "cloudformation-template-update-stack.json").read_text())
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::ApiGateway::Deployment"]


def test_deploy_twice_then_remove(aws):
    endpoint, service, env = aws
    params = [f"--param=bucket={BUCKET}", "--param=keepVersions=1"]

    serverless(service, env, "deploy", *params, "--param=rateLimit=7", "--param=burstLimit=9")
    assert stage_throttle(endpoint) == {"throttlingRateLimit": 7.0, "throttlingBurstLimit": 9}
    (first,) = sent_deployments(service)
    assert "StageDescription" not in first
    s3 = client(endpoint, "s3")
    s3.put_object(Bucket=BUCKET, Key="uploads/mine.jpg", Body=b"a user's photo")

    # The second deploy: new limits, and a changed function (its environment), so a new version is published
    output = serverless(
        service,
        env,
        "deploy",
        *params,
        "--param=rateLimit=11",
        "--param=burstLimit=13",
        FETCH_ALLOW_NETWORKS="10.0.0.0/8",
    )
    (second,) = sent_deployments(service)
    assert "StageDescription" not in second  # a new Deployment of the existing stage, as on every deploy
    assert stage_throttle(endpoint) == {"throttlingRateLimit": 11.0, "throttlingBurstLimit": 13}
    apigateway = client(endpoint, "apigateway")
    (api,) = apigateway.get_rest_apis()["items"]
    assert len(apigateway.get_deployments(restApiId=api["id"])["items"]) == 2
    # keepVersions=1: one published version at most. (moto applies a change set's resources in no fixed order, so
    # the new version is sometimes published from the old configuration, which Lambda does not publish twice.)
    versions = client(endpoint, "lambda").list_versions_by_function(FunctionName="clothing-classifier-dev-predict")
    published = [v["Version"] for v in versions["Versions"] if v["Version"] != "$LATEST"]
    assert len(published) == 1 and ("Pruned 1 function version" in output) == (published == ["2"]), output

    serverless(service, env, "remove", *params)
    stacks = client(endpoint, "cloudformation").list_stacks()["StackSummaries"]
    assert {s["StackStatus"] for s in stacks if s["StackName"] == "clothing-classifier-dev"} == {"DELETE_COMPLETE"}
    # the bucket the stack made is kept, and the user's photo in it
    assert s3.get_object(Bucket=BUCKET, Key="uploads/mine.jpg")["Body"].read() == b"a user's photo"
