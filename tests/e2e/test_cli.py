"""The `emofactory` CLI: run (submit, progress, release download), status, release, review, bad
sources, and up/down of a background stack."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import threading
import time
from datetime import UTC, datetime

import datasets
import grpc
import pytest
import requests
from click.testing import CliRunner

from emofactory import cli
from emofactory.local import STATE
from emofactory.v1 import common_pb2, ingest_pb2


@pytest.fixture
def attached(stack, tmp_path, monkeypatch):
    """The CLI pointed at the test stack, as if `emofactory up` had started it."""
    state = {"pid": os.getpid(), "env": stack.env(), "addresses": stack.addresses()}
    (tmp_path / STATE).write_text(json.dumps(state))
    monkeypatch.setattr(cli, "DATA_DIR", tmp_path)
    return tmp_path


def test_run_watches_the_job_and_downloads_a_release(attached, stack, tmp_path, http_server, speech_sample):
    config = tmp_path / "job.yaml"
    config.write_text(
        "job:\n  ingest:\n    allow_hosts: [127.0.0.1]\n  labeler:\n    modalities: [face]\n    min_modalities: 1\n"
    )
    out = tmp_path / "release"
    url = f"{http_server}/{speech_sample[0].name}"
    result = CliRunner().invoke(cli.main, ["run", url, "--config", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "SUCCEEDED" in result.output and "catalog" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["clips"]) == len(speech_sample[1]) and manifest["name"] == manifest["filter"]["job_id"]
    # every clip says where it came from, in every export
    for clip in manifest["clips"]:
        assert clip["source"] == url and clip["source_title"] == "sample", clip
        assert clip["source_duration_s"] == pytest.approx(speech_sample[1][-1].end_s, abs=2.0)
        assert datetime.fromisoformat(clip["ingested_at"]) <= datetime.now(UTC)
    files = {p.stem: str(p) for p in (out / "parquet").glob("*.parquet")}
    loaded = datasets.load_dataset("parquet", data_files=files)
    assert sum(split.num_rows for split in loaded.values()) == len(speech_sample[1])
    assert all(set(split["source"]) == {url} for split in loaded.values())
    (jsonl,) = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()][:1]
    assert jsonl["source"] == url and jsonl["ingested_at"] == manifest["clips"][0]["ingested_at"]
    rows = [row for path in out.glob("*.csv") for row in csv.DictReader(path.open())]
    assert len(rows) == len(speech_sample[1]) and {row["Source"] for row in rows} == {url}
    assert (out / "report" / "report.html").exists()
    assert not [line for line in result.output.splitlines() if line.startswith("report:") and "report.html" not in line]

    job_id = manifest["filter"]["job_id"]
    status = CliRunner().invoke(cli.main, ["status", job_id])
    assert status.exit_code == 0 and "SUCCEEDED" in status.output and "labeler" in status.output
    assert url in status.output  # each video's source
    again = CliRunner().invoke(
        cli.main, ["release", "again", "--job", job_id, "--out", str(tmp_path / "again"), "--ratios", "0.8,0.1,0.1"]
    )
    assert again.exit_code == 0, again.output
    assert json.loads((tmp_path / "again" / "manifest.json").read_text())["split_ratios"] == [0.8, 0.1, 0.1]
    review_on_the_catalogs_page(stack, manifest, tmp_path)


def review_on_the_catalogs_page(stack, manifest: dict, tmp_path) -> None:
    """Three people label the release on the page the stack's catalog serves (the browser itself:
    test_review_page); the CLI gives their agreement and a validated release."""
    release_id, labels = manifest["release_id"], {c["clip_id"]: c["label"] for c in manifest["clips"]}
    page = stack.addresses()["review"]
    for name in ("ann", "bea", "cem"):
        added = CliRunner().invoke(cli.main, ["review", "annotator", name])
        assert added.exit_code == 0, added.output
        session = requests.Session()
        token = added.output.split("token ")[1].split()[0]
        assert session.post(f"{page}/signin", data={"name": name, "token": token}).status_code == 200
        while clip := re.search(r'data-clip="([^"]+)"', session.get(f"{page}/r/{release_id}").text):
            answer = session.post(f"{page}/r/{release_id}/clips/{clip[1]}", data={"label": labels[clip[1]]})
            assert answer.status_code == 200, answer.text[:300]
    at = ["--catalog", stack.address("catalog")]  # any catalog by address, as through a port-forward
    results = CliRunner().invoke(cli.main, ["review", "results", release_id, "--out", str(tmp_path / "r.json"), *at])
    assert results.exit_code == 0 and f"{len(labels)} of {len(labels)} clips have 3 labels" in results.output
    assert "cem: " in results.output and "agrees with the others 100.0%" in results.output
    assert json.loads((tmp_path / "r.json").read_text())["factory_agrees"] == 1.0
    out = tmp_path / "validated"
    validated = CliRunner().invoke(cli.main, ["review", "validate", release_id, "--out", str(out)])
    assert validated.exit_code == 0, validated.output
    kept = json.loads((out / "manifest.json").read_text())
    assert kept["validated_from"] == release_id and {c["clip_id"] for c in kept["clips"]} == set(labels)
    assert "Human validation" in (out / "report" / "report.html").read_text()
    for args, error in (
        (["annotator", "no spaces allowed"], "INVALID_ARGUMENT: name"),
        (["results", "rnothere"], "NOT_FOUND"),
        (["results", "../x"], "INVALID_ARGUMENT: release"),
        (["validate", kept["release_id"], "--out", str(tmp_path / "twice")], "already a validated release"),
    ):
        refused = CliRunner().invoke(cli.main, ["review", *args])
        assert refused.exit_code != 0 and error in refused.output, (args, refused.output)


def test_bad_sources_and_requests_are_clear_errors(attached, tmp_path):
    result = CliRunner().invoke(cli.main, ["run", str(tmp_path / "missing.mp4")])
    assert result.exit_code == 2 and "is not a URL, an s3:// URI, search:... or an existing file" in result.output
    result = CliRunner().invoke(cli.main, ["status", "no-such-job"])
    assert result.exit_code == 1 and "NOT_FOUND" in result.output
    result = CliRunner().invoke(cli.main, ["release", "x", "--out", str(tmp_path / "x"), "--ratios", "0.5,0.6,0.1"])
    assert result.exit_code == 1 and "split_ratios" in result.output


def test_a_source_outside_the_allowed_roots_says_which_option_allows_it(attached, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "clip.mp4"
    outside.write_bytes(b"not read")
    result = CliRunner().invoke(cli.main, ["run", str(outside)])
    assert result.exit_code == 1 and "outside the allowed roots" in result.output, result.output
    assert "--local-root" in result.output and "EMO_INGEST__LOCAL_ROOTS" in result.output


def test_a_config_file_with_an_unknown_key_is_refused_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "DATA_DIR", tmp_path)
    for text, named in (
        ("vison:\n  fps: 2\n", "unknown section 'vison'"),
        ("vision:\n  fsp: 2\n", "unknown setting 'fsp'"),
        ("job:\n  vision:\n    fsp: 2\n", "fsp"),
    ):
        config = tmp_path / "bad.yaml"
        config.write_text(text)
        result = CliRunner().invoke(cli.main, ["run", "https://example.org/v.mp4", "--config", str(config)])
        assert result.exit_code == 2 and named in result.output, result.output
        assert not (tmp_path.parent / "run").exists()  # no stack was started


def test_version():
    result = CliRunner().invoke(cli.main, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("emofactory, version ")


def test_status_without_a_stack_says_how_to_start_one(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "DATA_DIR", tmp_path)
    result = CliRunner().invoke(cli.main, ["status", "abc"])
    assert result.exit_code == 1 and "emofactory up" in result.output


def test_up_and_down(tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "DATA_DIR", tmp_path / "stack")
    up = CliRunner().invoke(cli.main, ["up", "--local-root", str(tmp_path)])
    try:
        assert up.exit_code == 0, up.output
        assert "stack up" in up.output and (tmp_path / "stack" / STATE).exists()
        assert CliRunner().invoke(cli.main, ["up"]).exit_code == 1  # one at a time
    finally:
        down = CliRunner().invoke(cli.main, ["down"])
    assert down.exit_code == 0 and "stack down" in down.output
    assert not (tmp_path / "stack" / STATE).exists()


def test_status_rides_out_a_restarting_ingest_which_the_stack_revives(attached, stack, ingest):
    job_id = ingest.SubmitJob(
        ingest_pb2.SubmitJobRequest(sources=[common_pb2.Source(s3_uri="s3://emofactory/none/missing.mp4")]), timeout=10
    ).job_id
    stack.kill("ingest", signal.SIGKILL)
    revived: list[str] = []
    later = threading.Timer(2.0, lambda: revived.extend(stack.revive()))
    later.start()
    try:
        result = CliRunner().invoke(cli.main, ["status", job_id])
    finally:
        later.join()
        stack.wait_service("ingest")
    assert result.exit_code == 0, result.output
    assert "ingest unreachable (UNAVAILABLE): trying again" in result.output and f"job {job_id}" in result.output
    assert revived and revived[0].startswith("ingest exited with code -9: restarted")
    deadline = time.monotonic() + 30  # the shared channel reconnects before the next test uses it
    while True:
        try:
            ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id), timeout=5)
            break
        except grpc.RpcError:
            assert time.monotonic() < deadline
            time.sleep(0.3)
