"""`python -m cli classify`'s verdicts: each row carries the service's verdict and clothing distance (from its
details answer), locally and through a real endpoint alike; the summary counts the verdicts; an output file written
before the verdict existed is resumed; a model without the statistics leaves both cells empty. `python -m cli
--details` prints the details answer for one photo."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.cli.test_classify_command import classify, summary_of
from tests.cli.test_output_and_names import rows_of
from tests.helpers import MANIFEST, ROOT, SAMPLE

OLD_HEADER = "path,label,score,top_k,error"


def cat_photo(path: Path) -> Path:
    """A real photo of no clothing at all: scikit-image's Chelsea the cat (451x300), saved as a JPEG."""
    from PIL import Image
    from skimage import data

    Image.fromarray(data.chelsea()).save(path, quality=90)
    return path


def two_garments(path: Path) -> Path:
    """The two sample photos side by side (pants, then the t-shirt at the same size), as a JPEG: clothing, but no
    one label is likely enough, so the model is "not sure" between them."""
    from PIL import Image

    with Image.open(SAMPLE) as pants, Image.open(ROOT / "samples" / "t-shirt.jpg") as t_shirt:
        both = Image.new("RGB", (pants.width * 2, pants.height))
        both.paste(pants.convert("RGB"), (0, 0))
        both.paste(t_shirt.convert("RGB").resize(pants.size), (pants.width, 0))
    both.save(path, quality=90)
    return path


def details_of(path: Path, manifest: Path | None = None) -> dict:
    """The service's own details answer for a file, in this process: what every row must agree with."""
    from core.contract import Request
    from core.service import Service
    from core.settings import Settings

    settings = Settings.from_env()
    if manifest is not None:
        import dataclasses

        settings = dataclasses.replace(settings, manifest_path=manifest)
    payload = {"image": base64.b64encode(path.read_bytes()).decode(), "top_k": 3, "probabilities": True}
    response = Service(settings).handle(Request.invocation({**payload, "details": True}, "test"))
    assert response.status == 200, response.body
    return response.body


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Two clothing photos (the samples), both of them in one photo, and a cat."""
    folder = tmp_path_factory.mktemp("verdicts")
    shutil.copy(SAMPLE, folder / "pants.jpg")
    shutil.copy(ROOT / "samples" / "t-shirt.jpg", folder / "t-shirt.jpg")
    two_garments(folder / "both.jpg")
    cat_photo(folder / "cat.jpg")
    return folder


@pytest.fixture(scope="module")
def answers(photos) -> dict[str, dict]:
    """The service's details answer for each photo, by path as the rows name it."""
    answers = {str(path): details_of(path) for path in sorted(photos.iterdir())}
    assert answers[str(photos / "cat.jpg")]["verdict"] == "not_clothing", answers
    assert answers[str(photos / "pants.jpg")]["verdict"] == "clothing", answers
    assert answers[str(photos / "both.jpg")]["verdict"] == "not_sure", answers
    return answers


def assert_rows_carry_the_answers(rows: dict[str, dict], answers: dict[str, dict]) -> None:
    """Each row's label, verdict and distance are the service's for that photo (a CSV cell is text)."""
    assert set(rows) == set(answers)
    for path, answer in answers.items():
        row = rows[path]
        assert row["label"] == answer["label"] and row["verdict"] == answer["verdict"], (row, answer)
        assert float(row["clothing_distance"]) == pytest.approx(answer["clothing_distance"], abs=1e-4), (row, answer)


def expected_verdicts(answers: dict[str, dict]) -> dict[str, int]:
    counts = Counter(answer["verdict"] for answer in answers.values())
    return {verdict: counts[verdict] for verdict in ("clothing", "not_sure", "not_clothing")}


def test_local_rows_have_the_verdict_and_distance_and_the_summary_counts_them(photos, answers, tmp_path):
    out = tmp_path / "rows.csv"
    proc = classify(photos, "--out", out, "--workers", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.read_text().splitlines()[0] == "path,label,score,top_k,verdict,clothing_distance,error"
    assert_rows_carry_the_answers({row["path"]: row for row in rows_of(out)}, answers)
    counts = expected_verdicts(answers)
    line = "verdicts: " + ", ".join(f"{verdict} {n}" for verdict, n in counts.items())
    assert line in proc.stderr.splitlines(), proc.stderr[-2000:]
    assert counts == {"clothing": 2, "not_sure": 1, "not_clothing": 1}


def test_endpoint_rows_read_the_details_answer_of_a_real_server(photos, answers, tmp_path, gcp_server):
    """Through the real functions-framework server: the rows and the summary are the local model's."""
    url, _ = gcp_server()
    out = tmp_path / "rows.jsonl"
    proc = classify(photos, "--endpoint", url, "--out", out, "--summary-json", timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {row["path"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert_rows_carry_the_answers(rows, answers)
    assert all(isinstance(row["clothing_distance"], float) for row in rows.values())
    assert summary_of(proc)["verdicts"] == expected_verdicts(answers)


def test_a_failed_image_has_no_verdict(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is no JPEG")
    out = tmp_path / "rows.jsonl"
    proc = classify(broken, "--out", out, "--workers", "1", "--summary-json")
    assert proc.returncode == 1, proc.stderr[-2000:]
    (row,) = map(json.loads, out.read_text().splitlines())
    assert row["error"].startswith("invalid_image") and row["verdict"] is None and row["clothing_distance"] is None
    assert summary_of(proc)["verdicts"] == {} and "verdicts:" not in proc.stderr


def old_rows(photos: Path, answers: dict[str, dict], jsonl: bool) -> str:
    """An output file as the command wrote it before rows had a verdict: the pants photo answered, the t-shirt
    failed (so it is done again), in the old columns."""
    pants, t_shirt = str(photos / "pants.jpg"), str(photos / "t-shirt.jpg")
    scores = answers[pants]["scores"]
    answered = [pants, next(iter(scores)), next(iter(scores.values())), [[k, v] for k, v in scores.items()], ""]
    failed = [t_shirt, "", "", [], "fetch_failed: the network was down"]
    if jsonl:
        fields = OLD_HEADER.split(",")
        return "".join(json.dumps(dict(zip(fields, row, strict=True))) + "\n" for row in (answered, failed))
    top_k = ";".join(f"{label}:{score}" for label, score in answered[3])
    return f"{OLD_HEADER}\n{pants},{answered[1]},{answered[2]},{top_k},\n{t_shirt},,,,{failed[4]}\n"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_an_output_written_before_verdicts_is_resumed(photos, answers, tmp_path, suffix):
    """The earlier run's answer is kept (its verdict unknown: empty), the failed and missing photos are classified
    with their verdicts, and the file is rewritten in today's columns so every row has all of them."""
    out = tmp_path / f"old{suffix}"
    out.write_text(old_rows(photos, answers, jsonl=suffix == ".jsonl"))
    proc = classify(photos, "--out", out, "--workers", "1", "--summary-json")
    assert proc.returncode == 0 and "dropped" not in proc.stderr, proc.stderr[-2000:]
    summary = summary_of(proc)
    assert summary["already_answered"] == 1 and summary["images"] == 3
    fresh = {path: answer for path, answer in answers.items() if not path.endswith("pants.jpg")}
    assert summary["verdicts"] == expected_verdicts(fresh)
    if suffix == ".csv":
        assert out.read_text().splitlines()[0] == "path,label,score,top_k,verdict,clothing_distance,error"
        rows = {row["path"]: row for row in rows_of(out)}
        empty = ""
    else:
        rows = {row["path"]: row for row in map(json.loads, out.read_text().splitlines())}
        empty = None
    kept = rows.pop(str(photos / "pants.jpg"))
    assert kept["label"] == "pants" and kept["verdict"] == empty and kept["clothing_distance"] == empty, kept
    assert_rows_carry_the_answers(rows, fresh)
    again = classify(photos, "--out", out, "--workers", "1", "--summary-json")
    assert again.returncode == 0 and summary_of(again)["already_answered"] == 4, again.stderr[-2000:]


def manifest_without_statistics(folder: Path, not_sure_below: float | None) -> Path:
    """A third-party model as the service sees one: the shipped model cut to its scores output (no pooled features)
    under a manifest with no novelty statistics, and a not-sure bar only when given."""
    from core.manifest import sha256_of
    from lab.feature_output import scores_only

    manifest = json.loads(MANIFEST.read_text())
    (folder / manifest["model_file"]).write_bytes(scores_only((MANIFEST.parent / manifest["model_file"]).read_bytes()))
    manifest["sha256"] = sha256_of(folder / manifest["model_file"])
    del manifest["novelty"], manifest["gate"]
    manifest.pop("not_sure_below", None)
    if not_sure_below is not None:
        manifest["not_sure_below"] = not_sure_below
    path = folder / "third-party.json"
    path.write_text(json.dumps(manifest))
    return path


@pytest.mark.parametrize("not_sure_below", [None, 0.883], ids=["no rule", "a not-sure bar only"])
def test_a_model_without_the_statistics_leaves_the_distance_empty(photos, tmp_path, not_sure_below):
    """No statistics: no distance, and no "not_clothing" (the cat is only "not sure" at best); no rule at all: no
    verdict either, and no verdict line in the summary."""
    manifest = manifest_without_statistics(tmp_path, not_sure_below)
    answers = {str(path): details_of(path, manifest) for path in sorted(photos.iterdir())}
    assert all("clothing_distance" not in answer for answer in answers.values()), answers
    out = tmp_path / "rows.jsonl"
    proc = classify(photos, "--out", out, "--workers", "1", "--manifest", manifest, "--summary-json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {row["path"]: row for row in map(json.loads, out.read_text().splitlines())}
    assert len(rows) == 4 and all(row["label"] and row["clothing_distance"] is None for row in rows.values())
    assert {path: row["verdict"] for path, row in rows.items()} == {p: a.get("verdict") for p, a in answers.items()}
    if not_sure_below is None:
        assert all(row["verdict"] is None for row in rows.values()) and summary_of(proc)["verdicts"] == {}
    else:
        counts = summary_of(proc)["verdicts"]
        assert counts == expected_verdicts(answers) and counts["not_clothing"] == 0 and counts["not_sure"] >= 1


def test_one_photo_with_details_prints_the_details_answer(photos):
    def one(*args: str) -> dict:
        proc = subprocess.run(
            [sys.executable, "-m", "cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    cat = str(photos / "cat.jpg")
    answer = one(cat, "--details", "--probabilities", "--top-k", "3")
    assert answer == details_of(photos / "cat.jpg")
    assert answer["verdict"] == "not_clothing" and answer["clothing_distance"] > answer["threshold"]
    assert one(cat, "--probabilities", "--top-k", "3") == answer["scores"]  # without --details: the flat answer


def test_an_endpoint_whose_usage_lists_no_details_is_not_asked_for_them():
    """A deployment from before the verdict refuses the unknown field: its usage (GET) lists the options it knows."""
    from cli.backends import Endpoint
    from cli.inputs import payload_for
    from core.service import Service

    current = Endpoint("http://127.0.0.1:9/", {}, 5.0, 0)
    current.learn_limits(Service().usage())
    assert current.details and payload_for(str(SAMPLE), 3, details=current.details)["details"] is True
    older = Endpoint("http://127.0.0.1:9/", {}, 5.0, 0)
    older.learn_limits({"usage": 'POST JSON {"url": "https://..."} (options: "top_k", "probabilities")'})
    assert not older.details and "details" not in payload_for(str(SAMPLE), 3, details=older.details)
    unknown = Endpoint("http://127.0.0.1:9/", {}, 5.0, 0)
    unknown.learn_limits(None)  # no usage to go by: ask, and a refusal is each row's error
    assert unknown.details


def test_a_distance_that_is_no_number_is_left_out():
    from cli.rows import row_for

    for distance in (10**400, float("nan"), "1.2", True):
        row = row_for("x.jpg", 200, {"scores": {"pants": 1.0}, "verdict": "clothing", "clothing_distance": distance})
        assert row["clothing_distance"] is None and row["verdict"] == "clothing" and row["label"] == "pants"
