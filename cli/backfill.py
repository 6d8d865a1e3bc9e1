"""Classify the photos already in a bucket on the cloud's own fan-out engine: python -m cli backfill TARGET
(DESCRIPTION says what runs for each cloud; docs/backfill.md has the deploy commands and the costs)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from . import backfill_aws as aws
from . import backfill_jobs as jobs
from .backfill_totals import Totals, aws_cost, job_cost, show
from .options import at_least, seconds
from .preflight import Refused

DESCRIPTION = """\
Classify the photos already in a bucket, on the cloud's own fan-out engine, each photo's result written where
the storage trigger writes it. Photos answered already for the deployed model are skipped (--force: again).

  s3://BUCKET/PREFIX   AWS: starts the stack's Step Functions state machine (deployed with --param="backfill=true";
                       found by the stack output BackfillStateMachineArn, or --state-machine ARN) with
                       {"prefix": PREFIX, "force": ...}; its Distributed Map lists the prefix and hands the function
                       batches of keys. Progress: the Map Run's item counts; summary: its ResultWriter's files.
                       Uses your AWS credentials (boto3): cloudformation:DescribeStacks, states:DescribeStateMachine,
                       StartExecution, DescribeExecution, ListMapRuns, DescribeMapRun, s3:GetObject on the results.
  gs://BUCKET/PREFIX   Google Cloud: runs `gcloud run jobs execute JOB --region R [--tasks N] --update-env-vars
                       BACKFILL_PREFIX=PREFIX,BACKFILL_FORCE=false --async --format=json`; progress and summary
                       from the tallies the tasks write to the bucket (google-cloud-storage, your gcloud
                       application-default credentials).
  az://ACCOUNT/CONTAINER/PREFIX
                       Azure: runs `az containerapp job update --name JOB --resource-group RG --set-env-vars
                       BACKFILL_PREFIX=PREFIX BACKFILL_FORCE=false [BACKFILL_TASKS=N]` (job start's --env-vars
                       applies only with --image), then `az containerapp job start --name JOB --resource-group RG`;
                       progress and summary from the container (azure-storage-blob, --connection-string or
                       AzureWebJobsStorage).

With --wait (the default) it shows progress and ends with a summary: photos per label, failures and why, skipped,
and a cost estimate at list prices. Ctrl-C stops watching, not the run: the run goes on in the cloud, and the
command prints how to watch and stop it. --no-wait prints the same and returns at once.

Exit status: 0 every photo answered; 1 the run failed or some photos failed (rerun: answered photos are skipped);
2 a mistake said in one line before anything starts (the target, the stack, a missing gcloud or az); 130 Ctrl-C.
"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cli backfill", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = p.add_argument
    add("target", metavar="TARGET", help="s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or az://ACCOUNT/CONTAINER/PREFIX")
    add("--force", action="store_true", help="classify every photo again, answered or not")
    add("--wait", action=argparse.BooleanOptionalAction, default=True, help="watch to the end (default) or not")
    add("--poll", type=seconds, default=5.0, metavar="S", help="seconds between progress checks (default 5)")
    add("--summary-json", action="store_true", help="the summary as one JSON object on stderr")
    add("--stack", default="clothing-classifier-dev", help="s3: the stack (default clothing-classifier-dev)")
    add("--state-machine", metavar="ARN", help="s3: the state machine itself, instead of the stack's output")
    add("--region", help="s3, gs: the region (s3 default: your AWS configuration's; gs: required)")
    add("--job", help="gs, az: the job's name (default clothing-backfill)", default="clothing-backfill")
    add("--resource-group", metavar="RG", help="az: the job's resource group (required for az://)")
    add("--tasks", type=at_least(1), metavar="N", help="gs: tasks; az: shards (default: the job's own)")
    add("--connection-string", metavar="TEXT", help="az: the storage account's (default: AzureWebJobsStorage)")
    add("--results-prefix", default="results/", help="gs, az: the results prefix (default results/)")
    return p


def parse_target(target: str) -> tuple[str, str, str, str]:
    """(cloud, account or "", bucket, prefix) of s3://, gs:// or az:// ; a usage error for anything else."""
    parts = urlsplit(target)
    path = parts.path.lstrip("/")
    if parts.scheme in ("s3", "gs") and parts.netloc:
        return ("aws" if parts.scheme == "s3" else "gcp"), "", parts.netloc, path
    if parts.scheme == "az" and parts.netloc and path:
        container, _, prefix = path.partition("/")
        return "azure", parts.netloc, container, prefix
    raise Refused(f"{target!r} is not s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or az://ACCOUNT/CONTAINER/PREFIX")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cloud, account, bucket, prefix = parse_target(args.target)
        if cloud == "aws":
            return _aws(args, bucket, prefix)
        return _job(args, cloud, account, bucket, prefix)
    except Refused as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _aws(args: argparse.Namespace, bucket: str, prefix: str) -> int:
    import boto3

    session = boto3.session.Session(region_name=args.region)
    region = session.region_name or "us-east-1"
    sfn = session.client("stepfunctions", region_name=region)
    arn = args.state_machine or aws.state_machine_of(session.client("cloudformation", region_name=region), args.stack)
    machine = aws.Machine(sfn, arn)
    uploads, memory_gb = aws.function_settings(session.client("lambda", region_name=region), machine.function)
    aws.check_target(machine, bucket, prefix, uploads)
    execution = aws.start(sfn, arn, prefix, args.force)
    watch = aws.watch_lines(execution, region)
    if not _started(execution, execution, watch, args.wait):
        return 0
    started = time.monotonic()
    try:
        described, map_run, counts = aws.wait(sfn, execution, args.poll)
    except KeyboardInterrupt:
        return _interrupted(watch)
    totals, children = aws.collect(session.client("s3", region_name=region), sfn, machine, described, map_run)
    status = str(described["status"])
    if status != "SUCCEEDED":
        totals.notes.append(f"the execution {status}: {described.get('error', '')} {described.get('cause', '')}")
    unfinished = sum(counts.get(k, 0) for k in ("failed", "timedOut", "aborted"))
    if unfinished and not totals.failed:  # the counters are the Map's own: a failure its results leave out
        totals.notes.append(f"the Map Run counted {unfinished} items failed, timed out or aborted; rerun to retry them")
    cost = aws_cost(totals, children, memory_gb)
    show(totals, status.lower(), time.monotonic() - started, cost, args.summary_json)
    return 0 if status == "SUCCEEDED" and not totals.failed and not unfinished else 1


def _started(what: str, execution: str, watch: list[str], wait: bool) -> bool:
    """Say the execution started; without --wait, print its id on stdout and how to watch and stop it: then the
    command is done (False)."""
    print(f"started {what}", file=sys.stderr, flush=True)
    if not wait:
        print(execution)
        print("\n".join(watch), file=sys.stderr)
    return wait


def _job(args: argparse.Namespace, cloud: str, account: str, bucket: str, prefix: str) -> int:
    job = jobs.Job(cloud, args.job, "", bucket, prefix, args.force, args.tasks, args.results_prefix)
    read = _reader(args, job, account)
    jobs.require_tool(cloud)
    execution = jobs.start(job)
    watch = jobs.watch_lines(job, execution)
    if not _started(f"{args.job} execution {execution}", execution, watch, args.wait):
        return 0
    started = time.monotonic()
    try:
        state, tallies = jobs.wait(job, execution, lambda: read(job.run_prefix(execution)), args.poll)
    except KeyboardInterrupt:
        return _interrupted(watch)
    totals = summarize(tallies, job.tasks)
    cost = job_cost(cloud, totals)
    show(totals, state.lower(), time.monotonic() - started, cost, args.summary_json)
    return 0 if state == "Succeeded" and not totals.failed else 1


def _reader(args: argparse.Namespace, job: jobs.Job, account: str) -> Any:
    """Where the tallies are read from, checked before anything starts: the region or resource group the job
    needs, and on Azure a connection string to the account the target names."""
    if job.cloud == "gcp":
        if not args.region:
            raise Refused("gs:// needs --region: the Cloud Run job's region (e.g. --region europe-west1)")
        job.where = args.region
        return lambda prefix: jobs.gcs_tallies(job.bucket, prefix)
    if not args.resource_group:
        raise Refused("az:// needs --resource-group: the Container Apps job's resource group")
    job.where = args.resource_group
    connection = args.connection_string or os.environ.get("AzureWebJobsStorage", "")
    if not connection:
        raise Refused("az:// needs the storage account's connection string: --connection-string or AzureWebJobsStorage")
    fields = dict(p.split("=", 1) for p in connection.split(";") if "=" in p)
    if fields.get("AccountName", account) != account:
        raise Refused(f"the connection string is for the account {fields['AccountName']}, not {account}")
    return lambda prefix: jobs.blob_tallies(connection, job.bucket, prefix)


def summarize(tallies: list[dict[str, Any]], tasks: int | None) -> Totals:
    totals = Totals()
    for tally in sorted(tallies, key=lambda t: int(t.get("task", 0))):
        totals.add(tally)
    expected = tasks or max((int(t.get("tasks", 0)) for t in tallies), default=0)
    if expected and len(tallies) < expected:
        done = {int(t.get("task", -1)) for t in tallies}
        missing = [i for i in range(expected) if i not in done]
        note = f"{len(missing)} of {expected} tasks wrote no tally (task {missing[:10]}): see the job's logs"
        totals.notes.append(note)
    return totals


def _interrupted(watch: list[str]) -> int:
    print("\ninterrupted: the run goes on in the cloud", file=sys.stderr)
    print("\n".join(watch), file=sys.stderr, flush=True)
    return 130
