"""The backfill's state machine as AWS receives it: the full definition (ItemBatcher, tolerated failure, EXPRESS
children, ResultWriter: what moto cannot run) checked against the Amazon States Language by asl-validator (npm),
and the stack's resources as the States Language and IAM need them. cfn-lint checks the whole packaged template
(the `url` package of tests/adapters/aws/sls_packages.py carries the backfill)."""

import json
import subprocess

from tests.helpers import ROOT

ASL_VALIDATOR = ROOT / "node_modules" / ".bin" / "asl-validator"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:clothing-classifier-dev-predict"


def resolved(definition: dict) -> str:
    """The definition with CloudFormation's DefinitionSubstitutions made, as Step Functions receives it."""
    text = json.dumps(definition).replace("${FunctionArn}", FUNCTION_ARN)
    return text.replace("${ResultsPrefix}", "results/_backfill")


def validate(text: str) -> subprocess.CompletedProcess[str]:
    assert ASL_VALIDATOR.exists(), "node_modules/.bin/asl-validator is missing: `make install` installs it (npm ci)"
    return subprocess.run([str(ASL_VALIDATOR), "--json-definition", text], capture_output=True, text=True, timeout=60)


def test_the_full_definition_is_valid_states_language(backfill_definition):
    proc = validate(resolved(backfill_definition))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    classify = backfill_definition["States"]["Classify"]
    assert classify["ItemReader"]["Resource"] == "arn:aws:states:::s3:listObjectsV2"
    assert classify["ItemBatcher"]["MaxItemsPerBatch"] == 100 and classify["MaxConcurrency"] == 100
    assert classify["ToleratedFailurePercentage"] == 5
    assert classify["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"}
    retry = classify["ItemProcessor"]["States"]["Batch"]["Retry"][0]
    assert "BatchFailed" in retry["ErrorEquals"]  # the function's own error for a batch to run again


def test_the_validator_refuses_what_aws_refuses(backfill_definition):
    """The check can fail: a Map without its ItemProcessor, and a batch size that is not a number."""
    broken = json.loads(resolved(backfill_definition))
    del broken["States"]["Classify"]["ItemProcessor"]
    assert validate(json.dumps(broken)).returncode != 0
    broken = json.loads(resolved(backfill_definition))
    broken["States"]["Classify"]["ItemBatcher"]["MaxItemsPerBatch"] = "many"
    assert validate(json.dumps(broken)).returncode != 0


def test_the_state_machine_may_do_only_its_work(packages):
    """Least privilege, as packaged: list the uploads prefix, write its summaries, invoke this function, run its own
    child executions; the function may read results back (to skip what is answered)."""
    from tests.adapters.aws.sls_packages import template_resources

    resources = template_resources(packages["url"])
    (policy,) = resources["BackfillRole"]["Properties"]["Policies"]
    statements = {json.dumps(s["Action"]): s for s in policy["PolicyDocument"]["Statement"]}
    listing = statements['"s3:ListBucket"']
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["uploads/*"]}}
    writes = next(s for s in statements.values() if "s3:PutObject" in s["Action"])
    assert writes["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::clothing-backfill-example/results/_backfill/*"}
    invoke = statements['"lambda:InvokeFunction"']["Resource"]
    assert invoke[0] == {"Fn::GetAtt": ["PredictLambdaFunction", "Arn"]}
    assert all("*" not in json.dumps(s["Resource"]).replace(":*", "").replace("/*", "") for s in statements.values())
    read = resources["BackfillReadResults"]["Properties"]["PolicyDocument"]["Statement"]
    assert read == [
        {
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::clothing-backfill-example/results/*"},
        }
    ]
