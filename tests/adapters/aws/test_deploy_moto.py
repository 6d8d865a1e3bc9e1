"""`serverless deploy` and `serverless remove` of the packaged stacks against moto's server on loopback: the
stage throttle across deploys, version pruning, and a storage bucket kept by `remove` then deployed onto again."""

import subprocess
import urllib.request

from tests.adapters.aws.sls_packages import template_resources
from tests.serverless import copy_service, sls_env

# osls and the AWS SDK it uses honour AWS_ENDPOINT_URL. The deploys are packages of sls_packages.py
# (`deploy --package`, as after `serverless package`): the REST API with the default limits, then the same stack
# with other limits, a storage bucket and a changed function. moto enforces few of CloudFormation's rules (it
# accepts a Deployment's StageDescription on a stage that exists, which AWS refuses: every deploy after the first
# failed so), so the template each deploy sent is checked too.
REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION}
# osls waits this long before each look at a change set or a stack's events (5 s by default, sized for
# CloudFormation): moto answers at once, so a deploy would spend most of its time asleep.
POLL = {"SLS_AWS_MONITORING_FREQUENCY": "200"}


def aws_client(endpoint: str, name: str):
    import boto3

    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return boto3.client(name, endpoint_url=endpoint, region_name=REGION, **keys)


def stage_throttle(endpoint: str) -> dict:
    apigateway = aws_client(endpoint, "apigateway")
    (api,) = apigateway.get_rest_apis()["items"]
    stage = apigateway.get_stage(restApiId=api["id"], stageName="dev")
    return {k: v for k, v in stage["methodSettings"]["*/*"].items() if k.startswith("throttling")}


def deployer(sls: str, service, moto_endpoint: str):
    """``serverless(*args) -> output``: the CLI in ``service``, against moto, failing the test on an error."""
    env = sls_env(AWS_ENDPOINT_URL=moto_endpoint, **FAKE_CREDENTIALS, **POLL)

    def serverless(*args) -> str:
        proc = subprocess.run([sls, *args], cwd=service, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc.stdout + proc.stderr

    return serverless


def test_deploy_twice_then_remove(sls, packages, moto_endpoint, tmp_path):
    from tests.adapters.aws.moto_gaps import fill_gaps

    fill_gaps()  # before the first stack: the resource types moto's CloudFormation lacks
    serverless = deployer(sls, copy_service(tmp_path / "service"), moto_endpoint)

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


BUCKET = "clothing-uploads-example"


def notifications(endpoint: str) -> list[dict]:
    """The bucket's notification rules as S3 compares them: (id, target, events, prefix, suffix)."""
    configuration = aws_client(endpoint, "s3").get_bucket_notification_configuration(Bucket=BUCKET)
    rules = []
    for kind, target in (
        ("LambdaFunctionConfigurations", "LambdaFunctionArn"),
        ("QueueConfigurations", "QueueArn"),
        ("TopicConfigurations", "TopicArn"),
    ):
        for config in configuration.get(kind, []):
            filters = {
                r["Name"].lower(): r["Value"] for r in config.get("Filter", {}).get("Key", {}).get("FilterRules", [])
            }
            rules.append(
                {
                    "id": config.get("Id", ""),
                    "target": config[target],
                    "events": config["Events"],
                    "prefix": filters.get("prefix", ""),
                    "suffix": filters.get("suffix", ""),
                }
            )
    return rules


def overlapping(rules: list[dict]) -> list[tuple[str, str]]:
    """Pairs of rules S3 refuses together ("Configuration is ambiguously defined"): an event in common (a family
    such as s3:ObjectCreated:* covers each of its types), and prefixes and suffixes that can match the same key
    (one starts, or ends, the other; empty matches all). moto stores such pairs; S3 refuses the whole request."""

    def events_meet(a: str, b: str) -> bool:
        return a == b or (a.endswith(":*") and b.startswith(a[:-1])) or (b.endswith(":*") and a.startswith(b[:-1]))

    pairs = []
    for i, one in enumerate(rules):
        for other in rules[i + 1 :]:
            if (
                any(events_meet(a, b) for a in one["events"] for b in other["events"])
                and (one["prefix"].startswith(other["prefix"]) or other["prefix"].startswith(one["prefix"]))
                and (one["suffix"].endswith(other["suffix"]) or other["suffix"].endswith(one["suffix"]))
            ):
                pairs.append((one["id"], other["id"]))
    return pairs


def apply_template_notifications(endpoint: str, out) -> None:
    """moto's CloudFormation makes the bucket but ignores its NotificationConfiguration: applied here as
    CloudFormation applies it, from the template the deploy sent (its function's ARN resolved)."""
    resources = template_resources(out)
    (bucket,) = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::S3::Bucket" and "NotificationConfiguration" in r["Properties"]
    ]
    configurations = []
    for config in bucket["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]:
        function = resources[config["Function"]["Fn::GetAtt"][0]]["Properties"]["FunctionName"]
        arn = aws_client(endpoint, "lambda").get_function(FunctionName=function)["Configuration"]["FunctionArn"]
        rules = config["Filter"]["S3Key"]["Rules"]
        configurations.append(
            {"LambdaFunctionArn": arn, "Events": [config["Event"]], "Filter": {"Key": {"FilterRules": rules}}}
        )
    aws_client(endpoint, "s3").put_bucket_notification_configuration(
        Bucket=bucket["Properties"]["BucketName"],
        NotificationConfiguration={"LambdaFunctionConfigurations": configurations},
    )


def test_overlap_check_finds_what_s3_refuses():
    """The check itself, on rules S3 refuses and accepts (S3's user guide, "Configuring event notifications using
    object key name filtering")."""
    rule = {"id": "a", "events": ["s3:ObjectCreated:*"], "prefix": "uploads/", "suffix": ""}
    assert overlapping([rule, dict(rule, id="b", events=["s3:ObjectCreated:Put"], prefix="uploads/2024/")])
    assert overlapping([rule, dict(rule, id="b", prefix="", suffix=".jpg")])
    assert not overlapping([rule, dict(rule, id="b", prefix="results/")])
    assert not overlapping([rule, dict(rule, id="b", events=["s3:ObjectRemoved:*"])])
    jpg = dict(rule, suffix=".jpg")
    assert not overlapping([jpg, dict(jpg, id="b", suffix=".png")])


def test_a_bucket_kept_by_remove_can_be_deployed_onto_again(sls, packages, moto_endpoint, tmp_path):
    """deploy (the stack makes the bucket) -> remove (the bucket is kept) -> deploy with bucketExists=true. The kept
    bucket kept the notification CloudFormation gave it; the framework's custom resource then adds its own for the
    same events and prefix, which S3 refuses. After each step: no two rules S3 would refuse together."""
    from tests.adapters.aws.moto_custom_resources import errors_only, run_custom_resources
    from tests.adapters.aws.moto_gaps import fill_gaps

    # an empty account: the other test's removal kept this bucket
    urllib.request.urlopen(urllib.request.Request(moto_endpoint + "/moto-api/reset", method="POST"), timeout=30)
    fill_gaps()
    serverless = deployer(sls, copy_service(tmp_path / "service"), moto_endpoint)

    serverless("deploy", "--package", packages["py311"])
    apply_template_notifications(moto_endpoint, packages["py311"])
    (made,) = notifications(moto_endpoint)
    assert made["prefix"] == "uploads/" and made["target"].endswith(":function:clothing-classifier-dev-predict")

    # A kept bucket holds photos. (moto's CloudFormation retains a resource for DeletionPolicy Retain only, not
    # RetainExceptOnCreate: here the photo keeps the bucket, as S3 refuses to delete a bucket that is not empty.)
    aws_client(moto_endpoint, "s3").put_object(Bucket=BUCKET, Key="uploads/kept.jpg", Body=b"a user's photo")
    serverless("remove")
    assert notifications(moto_endpoint) == []  # the removed function's notification went with it

    # A bucket kept by a removal that left the notification (as the framework alone does): the deploy deletes it
    aws_client(moto_endpoint, "s3").put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "LambdaFunctionConfigurations": [
                {
                    "Id": "left-by-cloudformation",
                    "LambdaFunctionArn": made["target"],
                    "Events": made["events"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}},
                }
            ]
        },
    )

    with run_custom_resources(moto_endpoint, FAKE_CREDENTIALS) as ran, errors_only():
        output = serverless("deploy", "--package", packages["existing"])
    assert [r["status"] for r in ran] == [0], ran  # the framework's handler ran once (Create), and succeeded
    rules = notifications(moto_endpoint)
    assert overlapping(rules) == [], rules
    assert "deleted 1 stale notification(s) of bucket clothing-uploads-example" in output
    (rule,) = rules
    assert rule["id"].startswith("clothing-classifier-dev-predict-") and rule["prefix"] == "uploads/"
