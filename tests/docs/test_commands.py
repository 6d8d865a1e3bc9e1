"""The commands the README and the docs type are the ones that work: each ```json block that follows a
`python -m cli` command is that command's output, rerun here (so a new model cannot leave them stale); every
`make` target and `python -m` module they run exists; the deploy commands carry what the platforms need; and the
tables that restate the code (limits, settings, deploy parameters) say what the code says."""

import json
import re
import shlex
import subprocess
import sys

import pytest

from core.limits import FRONT_DOORS
from core.settings import Settings
from tests.docs.docs import ALL, DOCS, README, bash_commands, name, text
from tests.helpers import ROOT

# a ```bash block whose one command runs the CLI, then the ```json block with its output; in any doc
SAMPLE = re.compile(r"```bash\n\.venv/bin/python -m cli ([^\n]+)\n```\n```json\n(.*?)\n```", re.S)
SAMPLES = [(name(path), args, shown) for path in ALL for args, shown in SAMPLE.findall(text(path))]
COMMANDS = {name(path): bash_commands(text(path)) for path in ALL}
AWS, GCP, AZURE = DOCS / "deploy" / "aws.md", DOCS / "deploy" / "gcp.md", DOCS / "deploy" / "azure.md"


def test_the_docs_have_cli_samples_and_they_need_only_the_repository():
    assert len(SAMPLES) >= 2
    assert any(doc == "README.md" for doc, _, _ in SAMPLES), "the README shows a first classification and its answer"
    for doc, args, _ in SAMPLES:
        source = shlex.split(args)[0]
        assert source.startswith("samples/") and (ROOT / source).is_file(), f"{doc}: {source}"


@pytest.mark.parametrize("doc, args, shown", SAMPLES, ids=[f"{d}: {a}" for d, a, _ in SAMPLES])
def test_sample_output_is_current(doc, args, shown):
    proc = subprocess.run(
        [sys.executable, "-m", "cli", *shlex.split(args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert_same(json.loads(proc.stdout), json.loads(shown), doc)


def assert_same(actual, expected, doc: str, where: str = "") -> None:
    """The answer as shown: the same keys in the same order, numbers within 1e-5, everything else equal."""
    if isinstance(expected, dict):
        assert list(actual) == list(expected), f"keys or their order changed{where}: update {doc}"
        for key, value in expected.items():
            assert_same(actual[key], value, doc, f"{where}.{key}")
    elif isinstance(expected, (int, float)) and not isinstance(expected, bool):
        assert actual == pytest.approx(expected, abs=1e-5), f"{where}: {doc} {expected}, model {actual}"
    else:
        assert actual == expected, f"{where}: {doc} {expected}, model {actual}"


def _make_targets() -> set[str]:
    return set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), re.M))


def test_the_readme_sets_up_and_tests_with_make():
    """The two set-up commands stay first-class: typed in the README, and targets of the Makefile."""
    readme = COMMANDS["README.md"]
    for target in ("install", "test"):
        assert any(c.split()[:2] == ["make", target] for c in readme), f"make {target}"
    assert {"install", "test"} <= _make_targets()


def test_every_make_target_the_docs_type_exists():
    targets = _make_targets()
    for doc, commands in COMMANDS.items():
        for command in commands:
            for typed in re.findall(r"(?:^|&&|;)\s*make ([\w-]+)", command):
                assert typed in targets, f"{doc}: `make {typed}` is not a Makefile target"


def test_every_module_the_docs_run_exists():
    """`python -m X` of this repository's code (cli, lab, bench...): X is a module or package here."""
    local = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file() or (p / "__main__.py").is_file()}
    for doc, commands in COMMANDS.items():
        for command in commands:
            for module in re.findall(r"python3? -m ([\w.]+)", command):
                if module.split(".")[0] not in local:
                    continue  # a tool's module (pytest, pip)
                path = ROOT.joinpath(*module.split("."))
                assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), f"{doc}: -m {module}"


def test_the_readme_deploys_on_every_cloud_and_links_each_page():
    readme = text(README)
    for command in ("npx serverless deploy", "gcloud functions deploy", "func azure functionapp publish"):
        assert any(command in c for c in COMMANDS["README.md"]), command
    for page in ("docs/deploy/aws.md", "docs/deploy/gcp.md", "docs/deploy/azure.md", "docs/index.md"):
        assert f"]({page})" in readme, page


@pytest.mark.parametrize(
    "page, signs_in, deploys, removes",
    [
        (AWS, "aws configure", "npx serverless deploy", "npx serverless remove"),
        (GCP, "gcloud auth login", "gcloud functions deploy", "gcloud functions delete"),
        (AZURE, "az login", "func azure functionapp publish", "az group delete"),
    ],
    ids=["aws", "gcp", "azure"],
)
def test_each_deploy_page_goes_from_sign_in_to_removal(page, signs_in, deploys, removes):
    commands = COMMANDS[name(page)]
    for step in (signs_in, deploys, removes):
        assert any(c.startswith(step) or f" {step}" in c for c in commands), f"{name(page)}: no `{step}`"
    assert any(c.startswith("curl") for c in commands), f"{name(page)}: no call of the deployed function"


def _gcloud_commands(markdown: str) -> list[list[str]]:
    """Every `gcloud ...` command in the bash blocks, continuation lines joined, as arguments."""
    return [shlex.split(c, comments=True) for c in bash_commands(markdown) if c.startswith("gcloud ")]


def test_the_storage_trigger_deploy_command_works_for_any_bucket_location():
    """The Cloud Storage trigger: the bucket's location stated (else a bucket outside the function's region fails
    the deploy), its concurrency stated, its own service account as identity and trigger identity, the grants
    Eventarc needs, and roles/run.invoker on the trigger function only, never project-wide."""
    commands = _gcloud_commands(text(DOCS / "storage-triggers.md"))
    (deploy,) = [c for c in commands if c[:3] == ["gcloud", "functions", "deploy"] and "classify_upload" in c]
    assert "--trigger-bucket" in deploy and "--trigger-location" in deploy and "--retry" in deploy
    assert deploy[deploy.index("--concurrency") + 1] == "1"
    identity = next(a.split("=", 1)[1] for a in deploy if a.startswith("--service-account="))
    assert f"--trigger-service-account={identity}" in deploy
    grants = {
        next(a.split("=", 1)[1] for a in c if a.startswith("--role=")): next(a for a in c if a.startswith("--member="))
        for c in commands
        if c[:3] == ["gcloud", "projects", "add-iam-policy-binding"]
    }
    assert "gcloud storage service-agent" in grants["roles/pubsub.publisher"]
    assert grants["roles/eventarc.eventReceiver"] == f"--member=serviceAccount:{identity}"
    assert "roles/run.invoker" not in grants, "run.invoker project-wide lets the account invoke every service"
    (invoker,) = [c for c in commands if c[:3] == ["gcloud", "functions", "add-invoker-policy-binding"]]
    assert invoker[3] == deploy[3] and f"--member=serviceAccount:{identity}" in invoker


def test_an_iam_function_urls_callers_are_told_both_permissions():
    """A Function URL with AWS_IAM auth checks lambda:InvokeFunctionUrl and lambda:InvokeFunction: a caller
    allowed only the first gets 403."""
    (row,) = [line for line in text(AWS).splitlines() if line.startswith("| `url-iam` |")]
    assert "`lambda:InvokeFunctionUrl`" in row and "`lambda:InvokeFunction`" in row


def _table_column(markdown: str, heading: str) -> list[str]:
    """The first column's `code` of the first table under ``heading`` (a line starting with #s)."""
    section = markdown.split(f"\n{heading}\n", 1)[1]
    rows = re.findall(r"^\| `([^`]+)`", section.split("\n#", 1)[0], re.M)
    assert rows, heading
    return rows


def test_the_limits_table_is_the_code():
    rows = {}
    for line in text(DOCS / "limits.md").splitlines():
        match = re.match(r"\| [^|]+ \| `([a-z-]+)` \| ([\d,—]+) \| ([\d,—]+) \| ([\d,—]+) \|$", line)
        if match:
            rows[match[1]] = [None if c == "—" else int(c.replace(",", "")) for c in match.groups()[1:]]
    expected = {
        door.key: [door.max_body_bytes, door.max_raw_image_bytes, door.max_json_image_bytes]
        for door in FRONT_DOORS.values()
    }
    assert rows == expected


def test_every_setting_and_every_deploy_parameter_has_its_row():
    page = text(DOCS / "configuration.md")
    variables = _table_column(page, "## Environment variables")
    for spec in Settings.__dataclass_fields__.values():
        assert spec.metadata["variable"] in variables, spec.metadata["variable"]
    parameters = _table_column(page, "## Deploy parameters (`--param`, AWS)")
    serverless = (ROOT / "serverless.yml").read_text()
    for parameter in set(re.findall(r"\$\{param:(\w+)", serverless)):
        assert parameter in parameters, f"--param {parameter}"


def test_the_evaluate_example_says_it_scores_photos_the_model_trained_on():
    """The bulk page's --evaluate example runs on the validation folder, which the shipped model trained on: its
    ~100% must not read as the model's accuracy, so the page says so and names the cross-validated number."""
    page = text(DOCS / "bulk.md")
    assert any("validation --evaluate" in c for c in bash_commands(page))
    note = page.split("## Evaluating", 1)[1].split("\n## ", 1)[0]
    assert "trained on" in note and "about 100%" in note and "93.3%" in note
