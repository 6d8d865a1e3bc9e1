"""The backfill on Google Cloud and Azure: a job started with the cloud's own command line (gcloud, az; run as
subprocesses, never imported), watched through the tallies its tasks write to the bucket
(``<results prefix>_backfill/<execution>/task-<i>.json``: gcp/backfill.py, azure/backfill.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .preflight import Refused

TOOLS = {"gcp": "gcloud", "azure": "az"}
INSTALL = {
    "gcp": "install the Google Cloud CLI (https://cloud.google.com/sdk/docs/install) and run `gcloud auth login`",
    "azure": "install the Azure CLI (https://learn.microsoft.com/cli/azure/install-azure-cli) and run `az login`",
}


@dataclass
class Job:
    """One job on one cloud, and the bucket (or container) its tasks write their tallies to."""

    cloud: str  # "gcp" or "azure"
    name: str
    where: str  # gcp: the region; azure: the resource group
    bucket: str  # gcp: the bucket; azure: the container
    prefix: str
    force: bool
    tasks: int | None  # None: the job's own task (shard) count
    results_prefix: str = "results/"

    def run_prefix(self, execution: str) -> str:
        return f"{self.results_prefix}_backfill/{execution}/"


def require_tool(cloud: str) -> str:
    tool = TOOLS[cloud]
    found = shutil.which(tool)
    if found is None:
        raise Refused(f"{tool} is not on PATH: {INSTALL[cloud]}")
    return found


def _env_list(job: Job, separator: str) -> list[str]:
    pairs = [f"BACKFILL_PREFIX={job.prefix}", f"BACKFILL_FORCE={'true' if job.force else 'false'}"]
    if job.tasks is not None and job.cloud == "azure":  # Cloud Run counts its tasks itself (--tasks)
        pairs.append(f"BACKFILL_TASKS={job.tasks}")
    if separator == "," and any("," in p for p in pairs):  # gcloud's escape: ^DELIM^ picks another delimiter
        return ["^|^" + "|".join(pairs)]
    return [separator.join(pairs)] if separator else pairs


def start_commands(job: Job) -> list[list[str]]:
    """What runs, in order. Azure: `az containerapp job start --env-vars` applies only with --image, so the
    prefix and flags are set on the job first (`job update --set-env-vars`), then it starts."""
    if job.cloud == "gcp":
        command = ["gcloud", "run", "jobs", "execute", job.name, "--region", job.where]
        if job.tasks is not None:
            command += ["--tasks", str(job.tasks)]
        return [command + ["--update-env-vars", *_env_list(job, ","), "--async", "--format=json"]]
    base = ["--name", job.name, "--resource-group", job.where]
    return [
        ["az", "containerapp", "job", "update", *base, "--set-env-vars", *_env_list(job, ""), "--output", "none"],
        ["az", "containerapp", "job", "start", *base, "--output", "json"],
    ]


def status_command(job: Job, execution: str) -> list[str]:
    if job.cloud == "gcp":
        return ["gcloud", "run", "jobs", "executions", "describe", execution, "--region", job.where, "--format=json"]
    base = ["--name", job.name, "--resource-group", job.where]
    return ["az", "containerapp", "job", "execution", "show", *base, "--job-execution-name", execution, "-o", "json"]


def watch_lines(job: Job, execution: str) -> list[str]:
    if job.cloud == "gcp":
        stop = ["gcloud", "run", "jobs", "executions", "cancel", execution, "--region", job.where]
    else:
        base = ["--name", job.name, "--resource-group", job.where]
        stop = ["az", "containerapp", "job", "stop", *base, "--job-execution-name", execution]
    return [f"watch it: {' '.join(status_command(job, execution))}", f"stop it:  {' '.join(stop)}"]


def start(job: Job) -> str:
    """Run the start commands; the execution's name."""
    require_tool(job.cloud)
    out = ""
    for command in start_commands(job):
        out = _run(command)
    try:
        started = json.loads(out)
    except ValueError:
        raise Refused(f"{command[0]} answered no JSON: {out[:200]!r}") from None
    name = started.get("metadata", {}).get("name") or started.get("name") or ""
    if not name:
        raise Refused(f"{command[0]} did not name the execution: {out[:200]!r}")
    return str(name).rsplit("/", 1)[-1]


def _run(command: list[str]) -> str:
    proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["(no message)"]
        why = next((line for line in lines if "ERROR" in line), lines[-1])  # gcloud: its ERROR line, then advice
        raise Refused(f"`{' '.join(command[:4])} ...` failed (exit {proc.returncode}): {why.strip()}")
    return proc.stdout


def finished(job: Job, execution: str) -> str | None:
    """The execution's end state as the cloud says it ("Succeeded", "Failed"...), or None while it runs or when
    the status cannot be read (the tallies then say when it is done)."""
    try:
        described = json.loads(_run(status_command(job, execution)))
    except (Refused, ValueError, OSError, subprocess.TimeoutExpired):
        return None
    if job.cloud == "gcp":
        status = described.get("status", {})
        if not status.get("completionTime"):
            return None
        return "Failed" if status.get("failedCount") else "Succeeded"
    state = str(described.get("properties", {}).get("status", ""))
    return state if state in ("Succeeded", "Failed", "Stopped", "Degraded") else None


def gcs_tallies(bucket: str, prefix: str) -> list[dict[str, Any]]:
    """Every task's tally under ``prefix`` in a Cloud Storage bucket (STORAGE_EMULATOR_HOST is honoured)."""
    from google.cloud import storage

    client = storage.Client()
    blobs = client.list_blobs(client.bucket(bucket), prefix=prefix)
    return [json.loads(b.download_as_bytes()) for b in blobs if _is_tally(b.name, prefix)]


def blob_tallies(connection: str, container: str, prefix: str) -> list[dict[str, Any]]:
    """Every shard's tally under ``prefix`` in a Blob Storage container."""
    from azure.storage.blob import ContainerClient

    client = ContainerClient.from_connection_string(connection, container)
    names = [b.name for b in client.list_blobs(name_starts_with=prefix) if _is_tally(b.name, prefix)]
    return [json.loads(client.download_blob(name).readall()) for name in names]


def _is_tally(name: str, prefix: str) -> bool:
    rest = name[len(prefix) :]
    return rest.startswith("task-") and rest.endswith(".json") and "/" not in rest


class TaskProgress:
    """Tasks done of the count: tqdm's bar on a terminal, a line per change otherwise."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.done, self.total = 0, 0

    def show(self, done: int, total: int, classified: int) -> None:
        if (done, total) == (self.done, self.total):
            return
        if self.bar is None and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="task", dynamic_ncols=True, file=sys.stderr)
        if self.bar is not None:
            self.bar.total = total
            self.bar.update(done - self.done)
            self.bar.set_postfix(classified=classified)
        else:
            print(f"{done}/{total} tasks done, {classified} photos classified", file=sys.stderr, flush=True)
        self.done, self.total = done, total

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def wait(
    job: Job, execution: str, read: Callable[[], list[dict[str, Any]]], poll: float
) -> tuple[str, list[dict[str, Any]]]:
    """Poll the tallies until every task has written one or the cloud says the execution ended."""
    progress = TaskProgress()
    try:
        while True:
            tallies = read()
            total = job.tasks or max((int(t.get("tasks", 0)) for t in tallies), default=0)
            progress.show(len(tallies), total, sum(int(t.get("classified", 0)) for t in tallies))
            if total and len(tallies) >= total:
                return "Succeeded" if not any(t.get("failed") for t in tallies) else "Failed", tallies
            state = finished(job, execution)
            if state is not None:
                return state, read()
            time.sleep(poll)
    finally:
        progress.close()
