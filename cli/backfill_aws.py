"""The backfill on AWS: the stack's Step Functions state machine (infra/backfill.yml), started with a prefix and
watched through its Distributed Map's Map Run; the summary from the files its ResultWriter writes to the bucket."""

from __future__ import annotations

import json
import re
import secrets
import time
from datetime import datetime
from typing import Any

from .backfill_totals import Totals
from .preflight import Refused
from .progress import Progress


def state_machine_of(cfn: Any, stack: str) -> str:
    """The stack's ``BackfillStateMachineArn`` output."""
    try:
        stacks = cfn.describe_stacks(StackName=stack)["Stacks"]
    except Exception as error:  # noqa: BLE001 - no such stack, no credentials: one line either way
        raise Refused(f"cannot read the stack {stack}: {_why(error)}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for s in stacks for o in s.get("Outputs", [])}
    if "BackfillStateMachineArn" not in outputs:
        raise Refused(
            f"the stack {stack} has no BackfillStateMachineArn output: deploy with "
            '--param="bucket=NAME" --param="backfill=true" (docs/backfill.md)'
        )
    return str(outputs["BackfillStateMachineArn"])


class Machine:
    """What the state machine's definition says: the bucket its Map lists, where its ResultWriter writes, and the
    function its children invoke."""

    def __init__(self, sfn: Any, arn: str) -> None:
        try:
            definition = json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"])
        except Exception as error:  # noqa: BLE001
            raise Refused(f"cannot read the state machine {arn}: {_why(error)}") from None
        mapped = [s for s in definition.get("States", {}).values() if s.get("Type") == "Map" and "ItemReader" in s]
        if not mapped:
            raise Refused(f"{arn} is not the backfill's state machine: it has no Map state reading a bucket")
        state = mapped[0]
        self.arn = arn
        self.bucket = str(state["ItemReader"].get("Parameters", {}).get("Bucket", ""))
        writer = state.get("ResultWriter", {}).get("Parameters", {})
        self.results_prefix: str | None = writer.get("Prefix")
        tasks = state.get("ItemProcessor", {}).get("States", {}).values()
        functions = [t.get("Parameters", {}).get("FunctionName") for t in tasks if t.get("Type") == "Task"]
        self.function: str | None = next((f for f in functions if isinstance(f, str)), None)


def function_settings(lam: Any, function: str | None) -> tuple[str | None, float]:
    """The function's uploads prefix (None when it cannot be read) and its memory in GB (1.0 when unknown)."""
    if not function:
        return None, 1.0
    try:
        config = lam.get_function_configuration(FunctionName=function)
    except Exception:  # noqa: BLE001 - reading it is a courtesy check: the caller may lack lambda:GetFunction...
        return None, 1.0
    variables = (config.get("Environment") or {}).get("Variables") or {}
    return variables.get("STORAGE_UPLOADS_PREFIX", "uploads/"), float(config.get("MemorySize") or 1024) / 1024


def check_target(machine: Machine, bucket: str, prefix: str, uploads: str | None) -> None:
    """The state machine lists its own bucket, and its function classifies only keys under its uploads prefix."""
    if bucket != machine.bucket:
        raise Refused(
            f"the state machine lists s3://{machine.bucket}/, not s3://{bucket}/: give s3://{machine.bucket}/PREFIX, "
            "or deploy a backfill for that bucket"
        )
    if uploads is not None and not (prefix.startswith(uploads) or uploads.startswith(prefix)):
        raise Refused(
            f"s3://{bucket}/{prefix} is outside the function's uploads prefix {uploads!r}: every key there would be "
            "ignored; give a prefix under it"
        )


def execution_name(prefix: str) -> str:
    """A name that says what and when (the console lists executions by name): the prefix's letters, the UTC time
    and a random tail, within the 80 characters Step Functions allows."""
    slug = re.sub(r"[^A-Za-z0-9-]+", "-", prefix).strip("-")[:40] or "bucket"
    return f"backfill-{slug}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def start(sfn: Any, arn: str, prefix: str, force: bool) -> str:
    payload = json.dumps({"prefix": prefix, "force": force})
    try:
        started = sfn.start_execution(stateMachineArn=arn, name=execution_name(prefix), input=payload)
    except Exception as error:  # noqa: BLE001
        raise Refused(f"cannot start {arn}: {_why(error)}") from None
    return str(started["executionArn"])


def watch_lines(execution: str, region: str) -> list[str]:
    return [
        f"watch it: aws stepfunctions describe-execution --region {region} --execution-arn {execution}",
        f"stop it:  aws stepfunctions stop-execution --region {region} --execution-arn {execution}",
    ]


def wait(sfn: Any, execution: str, poll: float) -> tuple[dict[str, Any], str | None, dict[str, int]]:
    """Poll until the execution ends, the Map Run's item counts as progress; the last description, the Map Run and
    its last item counts (empty where the API gives none)."""
    progress: Progress | None = None
    shown, map_run, last_status, counts = 0, None, 0.0, None
    try:
        while True:
            described = sfn.describe_execution(executionArn=execution)
            map_run = map_run or _map_run(sfn, execution)
            counts = _item_counts(sfn, map_run)
            if counts is not None:
                progress = progress or Progress(counts["total"], 0)
                shown = _advance(progress, counts, shown)
            elif time.monotonic() - last_status >= 30:  # no Map Run counters (yet): the status now and then
                last_status = time.monotonic()
                print(f"execution {described['status']}", flush=True, file=_stderr())
            if described["status"] != "RUNNING":
                return described, map_run, _item_counts(sfn, map_run) or counts or {}
            time.sleep(poll)
    finally:
        if progress is not None:
            progress.close()


def _map_run(sfn: Any, execution: str) -> str | None:
    try:
        runs = sfn.list_map_runs(executionArn=execution).get("mapRuns", [])
    except Exception:  # noqa: BLE001 - the caller may lack states:ListMapRuns: the status alone then
        return None
    return str(runs[0]["mapRunArn"]) if runs else None


def _item_counts(sfn: Any, map_run: str | None) -> dict[str, int] | None:
    if map_run is None:
        return None
    try:
        return dict(sfn.describe_map_run(mapRunArn=map_run)["itemCounts"])
    except Exception:  # noqa: BLE001
        return None


def _advance(progress: Progress, counts: dict[str, int], shown: int) -> int:
    """Move the bar to the items finished (succeeded or failed); its total grows as the Map lists the prefix."""
    total = max(counts.get("total", 0), progress.total)
    if total != progress.total:
        progress.total = total
        if progress.bar is not None:
            progress.bar.total = total
            progress.bar.refresh()
    finished = sum(counts.get(k, 0) for k in ("succeeded", "failed", "timedOut", "aborted"))
    if progress.bar is not None and counts.get("failed"):
        progress.bar.set_postfix(failed=counts["failed"], refresh=False)
    for _ in range(finished - shown):
        progress.update()
    return max(finished, shown)


def collect(s3: Any, sfn: Any, machine: Machine, described: dict[str, Any], map_run: str | None) -> tuple[Totals, int]:
    """The children's tallies, added up, and how many children ran: from the ResultWriter's files (a manifest
    listing SUCCEEDED_n.json / FAILED_n.json under ``<prefix>/<Map Run id>/``), else the execution's output."""
    totals = Totals()
    output = _json(described.get("output"))
    if isinstance(output, list):  # a Map without a ResultWriter: the children's outputs themselves
        for tally in output:
            totals.add(tally)
        return totals, len(output)
    manifest_key = _manifest_key(output, machine, map_run)
    if manifest_key is None:
        totals.notes.append("no results to read: the execution has no output and no Map Run")
        return totals, 0
    return totals, _read_results(s3, machine.bucket, manifest_key, totals, sfn, map_run)


def _manifest_key(output: Any, machine: Machine, map_run: str | None) -> str | None:
    details = output.get("ResultWriterDetails") if isinstance(output, dict) else None
    if isinstance(details, dict) and details.get("Key"):
        return str(details["Key"])
    if map_run and machine.results_prefix is not None:  # a failed run has no output; the files are there all the same
        return f"{machine.results_prefix.rstrip('/')}/{map_run.rsplit(':', 1)[-1]}/manifest.json"
    return None


def _read_results(s3: Any, bucket: str, manifest_key: str, totals: Totals, sfn: Any, map_run: str | None) -> int:
    try:
        manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    except Exception as error:  # noqa: BLE001
        totals.notes.append(f"cannot read s3://{bucket}/{manifest_key}: {_why(error)}")
        return 0
    files = manifest.get("ResultFiles", {})
    children = 0
    for status in ("SUCCEEDED", "FAILED", "PENDING"):
        for entry in files.get(status, []):
            records = json.loads(s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read())
            for record in records:
                children += 1
                _add_record(totals, status, record)
    if not children:
        counts = _item_counts(sfn, map_run) or {}
        totals.notes.append(
            f"s3://{bucket}/{manifest_key} lists no result files, so no per-label counts: the Map Run counted "
            f"{counts.get('succeeded', '?')} items succeeded, {counts.get('failed', '?')} failed"
        )
    return children


def _add_record(totals: Totals, status: str, record: dict[str, Any]) -> None:
    """One child's record as the ResultWriter writes it: its Input and Output as JSON text, its dates, and for a
    failed child its Error and Cause."""
    seconds = _seconds(record.get("StartDate"), record.get("StopDate"))
    if status == "SUCCEEDED":
        totals.add(_json(record.get("Output")), seconds)
        return
    totals.workers += 1
    totals.worker_seconds += seconds or 0.0
    keys = _failed_keys(record.get("Cause"))
    if keys:
        totals.failed.update(keys)
        return
    items = _json(record.get("Input"))
    batch = [str(i.get("Key")) for i in items.get("Items", [])] if isinstance(items, dict) else []
    what = f"a batch of {len(batch)} keys from {batch[0]}" if batch else str(record.get("Name", "a child"))
    totals.failed[what] = f"{record.get('Error', status)}: {str(record.get('Cause', ''))[:300]}"


def _failed_keys(cause: Any) -> dict[str, str]:
    """The keys a BatchFailed names (handlers/backfill.py: "N of M keys failed: {key: why}" in the Lambda error's
    errorMessage, which Step Functions passes on as the Cause); empty when cut short or another error."""
    error = _json(cause)
    message = error.get("errorMessage", "") if isinstance(error, dict) else ""
    _, _, listed = str(message).partition(" keys failed: ")
    failed = _json(listed)
    return {str(k): str(v) for k, v in failed.items()} if isinstance(failed, dict) else {}


def _seconds(start: Any, stop: Any) -> float | None:
    try:
        return (datetime.fromisoformat(str(stop)) - datetime.fromisoformat(str(start))).total_seconds()
    except ValueError:
        return None


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _why(error: Exception) -> str:
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__


def _stderr() -> Any:
    import sys

    return sys.stderr
