"""`emofactory`: the factory from one command.

\b
    emofactory up / down                 the local stack (NATS JetStream, S3, the seven services) in the background
    emofactory run SOURCE... --out DIR   submit, watch each stage, then create and download a release
    emofactory status JOB                a job's state, per-stage counts and failures
    emofactory release NAME --out DIR    a release from what the catalog holds
    emofactory eval LABELLED --out DIR   the labels measured on a labelled set (in this process)
    emofactory calibrate EVAL_JSON       the fusion's temperatures fitted on an eval's report
    emofactory train RELEASE --modality  a baseline trained on a release (per-class table, confusion)
    emofactory review serve              the review page: people label a release's clips (annotator, results, validate)
    emofactory review tasks / agreement  a release out to Label Studio; people's labels back: majority, kappa

\b
Sources: http(s) URLs (videos, playlists), local files, s3:// URIs, or `search:kw1,kw2`.
Settings: a YAML file (--config) with the services' sections (bus, store, one per stage) and a `job:`
section of per-job options (one per stage that takes them: JobConfig), plus EMO_* env vars."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
import grpc
import yaml
from google.protobuf.json_format import MessageToDict, ParseDict
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from emofactory.core.channels import open_channel
from emofactory.core.config import StoreConfig, check_settings, load_section
from emofactory.core.errors import InvalidRequest
from emofactory.core.jobs import SETTLED
from emofactory.core.store import ObjectStore
from emofactory.local import ROOT, LocalStack, state_of, wait_for_signal
from emofactory.pipeline import NAMES, SETTINGS, stage_class
from emofactory.v1 import catalog_pb2, catalog_pb2_grpc, common_pb2, ingest_pb2, ingest_pb2_grpc

# soft_wrap: a summary stays one line (paths are not broken across lines) however narrow the terminal.
console = Console(soft_wrap=True)
DATA_DIR = Path(os.environ.get("EMO_DATA_DIR", ROOT / ".emofactory" / "stack"))


def parse_source(text: str) -> common_pb2.Source:
    if text.startswith(("http://", "https://")):
        return common_pb2.Source(url=text)
    if text.startswith("s3://"):
        return common_pb2.Source(s3_uri=text)
    if text.startswith("search:"):
        keywords = [k.strip() for k in text.removeprefix("search:").split(",") if k.strip()]
        return common_pb2.Source(search=common_pb2.SearchQuery(keywords=keywords))
    path = Path(text).expanduser().resolve()
    if not path.is_file():
        raise click.BadParameter(f"{text!r} is not a URL, an s3:// URI, search:... or an existing file")
    return common_pb2.Source(path=str(path))


def job_config(config_file: str | None) -> common_pb2.JobConfig:
    """The file's `job:` options; every other section is checked here as the services would read it,
    so an unknown section or setting fails the command, not a service."""
    if not config_file:
        return common_pb2.JobConfig()
    try:
        check_settings(SETTINGS, {"EMO_CONFIG": config_file})
    except (ValueError, yaml.YAMLError) as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from exc
    data = yaml.safe_load(Path(config_file).read_text()) or {}
    try:
        return ParseDict(data.get("job") or {}, common_pb2.JobConfig())
    except Exception as exc:  # json_format says which field
        raise click.BadParameter(f"{config_file}: job: {exc}", param_hint="--config") from exc


@contextlib.contextmanager
def connected(config_file: str | None = None, local_roots: tuple[str, ...] = ()):
    """Addresses of a running stack (`emofactory up`), else a stack started for this command."""
    state = state_of(DATA_DIR)
    if state is not None:
        os.environ.update(state["env"])
        yield state["addresses"]
        return
    env = {"EMO_INGEST__LOCAL_ROOTS": ",".join(local_roots or (str(Path.cwd()),))}
    if config_file:
        env["EMO_CONFIG"] = str(Path(config_file).resolve())
    console.print(f"[dim]no stack is up under {DATA_DIR}: starting one for this run[/dim]")
    started = time.monotonic()
    with LocalStack(DATA_DIR.parent / "run", env=env) as stack:
        os.environ.update(stack.env())
        console.print(f"[dim]stack up in {time.monotonic() - started:.1f} s[/dim]")
        yield stack.addresses()


@contextlib.contextmanager
def settings_file(config_file: str | None):
    """EMO_CONFIG names the file while the block runs in this process, then is as it was."""
    previous = os.environ.get("EMO_CONFIG")
    if config_file:
        os.environ["EMO_CONFIG"] = str(Path(config_file).resolve())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("EMO_CONFIG", None)
        else:
            os.environ["EMO_CONFIG"] = previous


def running_stack() -> dict[str, str]:
    """Addresses of the stack `emofactory up` started; status and release need one (their data lives there)."""
    state = state_of(DATA_DIR)
    if state is None:
        raise click.ClickException(f"no stack is up under {DATA_DIR}: start one with `emofactory up`")
    os.environ.update(state["env"])
    return state["addresses"]


RETRIED = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def get_job(addresses, job_id: str, patience_s: float = 60.0) -> common_pb2.Job:
    """The job's status; a service that is restarting (unreachable a while) is waited for up to
    `patience_s`, with growing pauses, and said so."""
    deadline, pause = time.monotonic() + patience_s, 0.5
    while True:
        try:
            with open_channel(addresses["ingest"]) as channel:
                stub = ingest_pb2_grpc.IngestServiceStub(channel)
                return stub.GetJob(ingest_pb2.GetJobRequest(job_id=job_id), timeout=10).job
        except grpc.RpcError as exc:
            if exc.code() not in RETRIED or time.monotonic() + pause > deadline:
                raise
            console.print(f"[dim]ingest unreachable ({exc.code().name}): trying again in {pause:.1f} s[/dim]")
            time.sleep(pause)
            pause = min(2 * pause, 8.0)


def watch(addresses, job_id: str, timeout_s: float) -> common_pb2.Job:
    """Per-stage progress bars (videos through each stage) until the job settles."""
    columns = (
        TextColumn("{task.description:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[note]}"),
    )
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        tasks = {name: progress.add_task(name, total=None, note="") for name in NAMES}
        deadline = time.monotonic() + timeout_s
        while True:
            job = get_job(addresses, job_id)
            for row in job.summary:
                settled = row.done + row.failed + row.skipped
                note = ", ".join(
                    f"{n} {label}"
                    for n, label in ((row.failed, "failed"), (row.skipped, "skipped"), (row.flagged, "flagged"))
                    if n
                )
                total = settled + row.pending if job.resolved else None
                progress.update(tasks[row.stage], completed=settled, total=total, note=note)
            if job.state in SETTLED:
                return job
            if time.monotonic() > deadline:
                raise click.ClickException(f"job {job_id} did not settle within {timeout_s:.0f} s")
            time.sleep(0.5)


def check_models(job: common_pb2.JobConfig) -> None:
    """Before anything starts: which model each modality uses under these settings and the job's
    labeler options, each fused one loaded here once, so a wrong path stops the command, named."""
    from emofactory.core.config import ModelsConfig
    from emofactory.core.errors import SettingError
    from emofactory.models.backends import backend_for
    from emofactory.models.check import load_models
    from emofactory.models.info import BACKEND_MODELS, emotion_models

    models = load_section(ModelsConfig, "models")
    try:
        labeler = stage_class("labeler").job_config(job)
    except InvalidRequest as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from exc
    found = emotion_models(models)
    for modality, info in found.items():
        role = "fused" if modality in labeler.modalities else "not fused (labeler.modalities)"
        if isinstance(info, str):
            console.print(f"[bold]{modality}[/bold]: no model, {role}: {info}", highlight=False)
        else:
            console.print(f"[bold]{modality}[/bold]: {info.name} ({info.format}, licence {info.licence}), {role}")
    # A path someone set must load; the bundled models are loaded where the job fuses them.
    paths = {"face": models.facial_emotion_path, "audio": models.speech_emotion_path, "text": models.text_emotion_path}
    fused = [m for m in labeler.modalities if not isinstance(found[m], str)]
    try:
        names = [BACKEND_MODELS[m] for m in found if paths[m] or m in fused]
        load_models(backend_for(models), models, names + ["whisper"] * bool(models.whisper_path))
    except SettingError as exc:
        raise click.ClickException(f"a model setting is wrong: {exc}") from exc


def video_progress(video: common_pb2.VideoStatus) -> str:
    """How far a video got: the stages it finished, or the first that failed or skipped it."""
    for s in video.stages:
        if s.state in (common_pb2.STAGE_STATE_FAILED, common_pb2.STAGE_STATE_SKIPPED):
            return f"{s.stage} {common_pb2.StageState.Name(s.state).removeprefix('STAGE_STATE_').lower()}"
    done = [s.stage for s in video.stages if s.state == common_pb2.STAGE_STATE_DONE]
    running = [f"{s.stage} {s.chunks_done} of {s.chunks} chunks" for s in video.stages if not s.state]
    return ", ".join([f"done through {done[-1]}"] * bool(done) + running) or "pending"


def print_job(job: common_pb2.Job) -> None:
    console.print(f"job [bold]{job.job_id}[/bold]: {common_pb2.JobState.Name(job.state).removeprefix('JOB_STATE_')}")
    table = Table("stage", "pending", "done", "failed", "skipped", "flagged")
    for row in job.summary:
        table.add_row(row.stage, *(str(v) for v in (row.pending, row.done, row.failed, row.skipped, row.flagged)))
    console.print(table)
    for row in job.summary:
        if row.not_kept:
            reasons = ", ".join(f"{code} {n}" for code, n in sorted(row.not_kept.items(), key=lambda x: -x[1]))
            console.print(f"segments not kept by {row.stage}, by reason: {reasons}", highlight=False)
    for error in job.errors:
        console.print(f"[red]job error[/red]: {error}")
    for video in job.videos:  # one line each: a source is never broken across lines
        line = f"video {video.video_id}: {video.source} ({video.title!r}), {video_progress(video)}"
        console.print(line, markup=False, highlight=False)
    for video in job.videos:
        for s in video.stages:
            if s.state in (common_pb2.STAGE_STATE_FAILED, common_pb2.STAGE_STATE_SKIPPED):
                state = common_pb2.StageState.Name(s.state).removeprefix("STAGE_STATE_").lower()
                console.print(f"[yellow]{video.source or video.video_id}[/yellow]: {s.stage} {state}: {s.reason}")


def make_release(addresses, request: catalog_pb2.CreateReleaseRequest, out: Path) -> catalog_pb2.CreateReleaseResponse:
    with open_channel(addresses["catalog"]) as channel:
        release = catalog_pb2_grpc.CatalogServiceStub(channel).CreateRelease(request, timeout=1800)
    return download_release(release, out)


def download_release(release: catalog_pb2.CreateReleaseResponse, out: Path) -> catalog_pb2.CreateReleaseResponse:
    store = ObjectStore(load_section(StoreConfig, "store"))
    prefix = f"releases/{release.release_id}/"
    for key in store.list_keys(prefix):
        store.get_file(store.ref(key), out / key.removeprefix(prefix))
    splits = ", ".join(f"{k} {v}" for k, v in sorted(release.splits.items()))
    console.print(f"release [bold]{release.release_id}[/bold]: {release.clips} clips ({splits or 'empty'}) in {out}")
    if release.not_kept:
        reasons = ", ".join(f"{code} {n}" for code, n in sorted(release.not_kept.items(), key=lambda x: -x[1]))
        console.print(f"segments left out, by reason: {reasons}", highlight=False)
    console.print(f"report: {out / 'report' / 'report.html'}")
    return release


def release_request(name: str, seed: int, ratios: str | None, **filters) -> catalog_pb2.CreateReleaseRequest:
    request = catalog_pb2.CreateReleaseRequest(name=name, seed=seed, filter=catalog_pb2.ListClipsRequest(**filters))
    if ratios:
        request.split_ratios[:] = [float(r) for r in ratios.split(",")]
    return request


def rpc_message(exc: grpc.RpcError) -> str:
    """The service's error, with what to do where the cause is the local stack's set-up."""
    message = f"{exc.code().name}: {exc.details()}"
    if exc.code() == grpc.StatusCode.UNAVAILABLE:
        message += f"\n(is the stack up? start it with `emofactory up`; its log: {DATA_DIR / 'stack.out'})"
    elif "outside the allowed roots" in (exc.details() or ""):
        message += (
            "\n(allow a folder with `emofactory up --local-root DIR` or EMO_INGEST__LOCAL_ROOTS=DIR,...;"
            " `emofactory run` without a stack allows the sources' own folders)"
        )
    return message


def fail_on_rpc(fn):
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except grpc.RpcError as exc:
            raise click.ClickException(rpc_message(exc)) from exc

    wrapper.__doc__, wrapper.__name__ = fn.__doc__, fn.__name__
    return wrapper


@click.group(help=__doc__)
@click.version_option(package_name="emofactory", prog_name="emofactory")
def main() -> None:
    pass


@main.command()
@click.option("--local-root", "roots", multiple=True, help="Folders local sources may come from (default: home, cwd).")
def up(roots: tuple[str, ...]) -> None:
    """Start the local stack in the background."""
    if state_of(DATA_DIR):
        raise click.ClickException(f"a stack is already up under {DATA_DIR}")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "EMO_DATA_DIR": str(DATA_DIR)}
    if roots:
        env["EMO_INGEST__LOCAL_ROOTS"] = ",".join(str(Path(r).resolve()) for r in roots)
    log = open(DATA_DIR / "stack.out", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "emofactory.local"], cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
    )
    deadline = time.monotonic() + 180
    while state_of(DATA_DIR) is None:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise click.ClickException(f"the stack did not come up; see {DATA_DIR / 'stack.out'}")
        time.sleep(0.3)
    console.print(f"stack up (pid {proc.pid}); services: {', '.join(state_of(DATA_DIR)['addresses'])}")


@main.command()
def down() -> None:
    """Stop the local stack."""
    state = state_of(DATA_DIR)
    if state is None:
        console.print("no stack is up")
        return
    os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + 60
    while state_of(DATA_DIR) is not None and time.monotonic() < deadline:
        time.sleep(0.3)
    console.print("stack down")


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option("--language", default="en-US", show_default=True, help="BCP-47 language of the speech.")
@click.option(
    "--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="YAML settings and job options."
)
@click.option(
    "--out", type=click.Path(file_okay=False), help="Create a release of this job's clips and download it here."
)
@click.option("--release-name", default="", help="Name of the release (default: the job id).")
@click.option("--timeout", "timeout_s", default=3600.0, show_default=True, help="Seconds to wait for the job.")
@fail_on_rpc
def run(sources, language, config_file, out, release_name, timeout_s) -> None:
    """Run SOURCES through the whole pipeline; with --out, write a release."""
    parsed = [parse_source(s) for s in sources]
    roots = tuple(sorted({str(Path(s.path).parent) for s in parsed if s.path}))
    request = ingest_pb2.SubmitJobRequest(sources=parsed, language=language, config=job_config(config_file))
    with settings_file(config_file):
        check_models(request.config)
    with connected(config_file, roots) as addresses:
        with open_channel(addresses["ingest"]) as channel:
            submitted = ingest_pb2_grpc.IngestServiceStub(channel).SubmitJob(request, timeout=30)
        job_id = submitted.job_id
        console.print(f"job {job_id} submitted ({len(parsed)} sources)")
        for warning in submitted.warnings:
            console.print(f"[yellow]warning[/yellow]: {warning}", highlight=False)
        job = watch(addresses, job_id, timeout_s)
        print_job(job)
        if job.state == common_pb2.JOB_STATE_FILTERED:
            console.print("every video was skipped by the job's own filters (reasons above): no release")
        elif out:
            make_release(addresses, release_request(release_name or job_id, 0, None, job_id=job_id), Path(out))
    if job.state == common_pb2.JOB_STATE_FAILED:
        sys.exit(1)


@main.command()
@click.argument("job_id")
@fail_on_rpc
def status(job_id: str) -> None:
    """Show a job's state, per-stage counts and failures."""
    print_job(get_job(running_stack(), job_id))


@main.command()
@click.argument("name")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to download the release to.")
@click.option("--job", "job_id", default="", help="Only clips of this job.")
@click.option("--language", default="", help="Only clips in this language (prefix: 'ar' matches 'ar-EG').")
@click.option("--min-confidence", default=0.0, help="Only clips whose label confidence reaches this.")
@click.option("--seed", default=0, show_default=True)
@click.option("--ratios", default=None, help="train,validation,test (default 0.7,0.1,0.2).")
@click.option("--clip-max-height", default=0, help="Clips re-encoded at most this high, in pixels (0: as cut).")
@click.option("--clip-max-fps", default=0.0, help="Clips re-encoded at most this frame rate (0: as cut).")
@fail_on_rpc
def release(name, out, job_id, language, min_confidence, seed, ratios, clip_max_height, clip_max_fps) -> None:
    """Create a release NAME from the catalog and download it."""
    request = release_request(name, seed, ratios, job_id=job_id, language=language, min_confidence=min_confidence)
    request.clip_max_height, request.clip_max_fps = clip_max_height, clip_max_fps
    make_release(running_stack(), request, Path(out))


@main.command(name="eval")
@click.argument("labelled", type=click.Path(exists=True))
@click.option(
    "--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="YAML settings and job options."
)
@click.option(
    "--out", default="eval", show_default=True, type=click.Path(file_okay=False), help="Folder for the report."
)
@click.option("--language", default="en-US", show_default=True, help="BCP-47 language of the speech.")
def evaluate(labelled, config_file, out, language) -> None:
    """Run a labelled set (a CSV of path,label or a RAVDESS / CREMA-D / MEAD folder) through the pipeline in
    this process and print, per modality and fused: per-class P/R/F1, UAR, weighted F1, yield, right of kept."""
    from emofactory.evaluation.labelled import labelled_set
    from emofactory.evaluation.report import write_report
    from emofactory.evaluation.runner import evaluate_items, labeler_config

    job = job_config(config_file)
    try:
        items = labelled_set(labelled)
    except InvalidRequest as exc:
        raise click.BadParameter(str(exc), param_hint="LABELLED") from exc
    console.print(f"{len(items)} labelled files from {labelled}", highlight=False)
    started = time.monotonic()
    out = Path(out)
    with settings_file(config_file):  # the stages read their sections from it, as the services do
        results = evaluate_items(items, out / "work", job, language=language)
        labeler = labeler_config(job)
    settings = {"labelled": str(labelled), "config": config_file or "", "job": MessageToDict(job), "language": language}
    wide = Console(soft_wrap=True, width=max(console.width, 140))  # per-class P/R/F1 of six columns
    write_report(results, out, settings | {"seconds": round(time.monotonic() - started, 1)}, wide, labeler)


@main.command()
@click.option(
    "--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="YAML settings (its models section)."
)
def models(config_file) -> None:
    """What each modality's model is under these settings (and EMO_MODELS__*): its format, where it
    loads from, its classes onto the canonical seven, its licence. Loads no weights."""
    from emofactory.core.classes import CANONICAL, canonical_matrix
    from emofactory.core.config import ModelsConfig
    from emofactory.core.errors import PermanentError
    from emofactory.models.backends import model_routes
    from emofactory.models.info import BACKEND_MODELS, EMOTION_MODELS

    with settings_file(config_file):
        config = load_section(ModelsConfig, "models")
    routes = model_routes(config)
    broken = []
    for modality, info_of in EMOTION_MODELS.items():
        where = routes.get(BACKEND_MODELS[modality], config.backend)
        try:
            info = info_of(config)
            matrix = canonical_matrix(info.classes, info.name)
        except PermanentError as exc:
            if modality != "audio" or config.speech_emotion_path:  # no SER model is a choice, not a fault
                broken.append(modality)
            console.print(f"[bold]{modality}[/bold]: none ({exc})", highlight=False)
            continue
        console.print(f"[bold]{modality}[/bold]: {info.name} ({info.format}, runs {where}, licence {info.licence})")
        console.print(f"  from: {info.source}", highlight=False)
        mapped = ", ".join(
            f"{c}→{CANONICAL[r.argmax()] if r.any() else '(dropped)'}" for c, r in zip(info.classes, matrix)
        )
        console.print(f"  classes: {mapped}", highlight=False)
    if broken:
        raise click.ClickException(f"the {', '.join(broken)} model settings are wrong (see above)")


@main.command()
@click.argument("report", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--modalities", default="face,audio,text", show_default=True, help="The modalities whose temperatures to fit."
)
@click.option("--out", default="fusion.yaml", show_default=True, type=click.Path(dir_okay=False))
def calibrate(report, modalities, out) -> None:
    """Fit the fusion's per-modality temperatures on an `emofactory eval` REPORT (its eval.json) by the
    fused negative log-likelihood, cross-validated by speaker; write them as a settings file (--config)."""
    from emofactory.evaluation.calibrate import calibrate as fit
    from emofactory.evaluation.calibrate import settings_file

    names = tuple(m.strip() for m in modalities.split(",") if m.strip())
    try:
        found = fit(json.loads(Path(report).read_text())["files"], names)
    except (ValueError, KeyError) as exc:
        raise click.ClickException(f"{report}: {exc}") from exc
    line = ", ".join(f"{m} {t:g}" for m, t in found["temperatures"].items())
    console.print(f"temperatures on {found['files']} files ({found['pairs']} of them pairs): {line}", highlight=False)
    for when in ("before", "after"):
        console.print(f"  {when}: NLL {found[when]['nll']:.3f}, ECE {found[when]['ece']:.3f}", highlight=False)
    if "by_speaker" in found:
        held = found["by_speaker"]
        console.print(f"  held-out speakers ({held['speakers']}): NLL {held['nll']:.3f}", highlight=False)
    Path(out).write_text(settings_file(found))
    console.print(f"written {out}: run with --config {out} (or EMO_CONFIG), or copy its labeler section")


@main.command()
@click.argument("release_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--modality", required=True, type=click.Choice(["audio", "face", "text", "fusion"]))
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Default: RELEASE_DIR/baselines/MODALITY[-from-TEACHER], linked in its report.",
)
@click.option("--teacher", type=click.Choice(["audio", "face", "text"]), help="Learn the teacher's labels (seed 002).")
@click.option("--teacher-min-confidence", default=0.5, show_default=True, type=click.FloatRange(0, 1))
@click.option("--seed", default=0, show_default=True)
@click.option("--max-epochs", default=400, show_default=True, type=click.IntRange(1, 100_000))
@click.option(
    "--audio-features", default="whisper", show_default=True, type=click.Choice(["whisper", "mfcc"]),
    help="Whisper's encoder states pooled over the clip (better on real speech), or MFCC statistics (faster).",
)  # fmt: skip
def train(release_dir, modality, out, teacher, teacher_min_confidence, seed, max_epochs, audio_features) -> None:
    """A baseline trained on RELEASE_DIR's train split and measured on its test split (per class
    precision, recall, F1; weighted F1, UAR, accuracy; confusion.png and results.json in --out)."""
    from emofactory.training.baseline import TrainConfig
    from emofactory.training.run import train_release

    config = TrainConfig(seed=seed, max_epochs=max_epochs)
    out = out or Path(release_dir) / "baselines" / (modality + (f"-from-{teacher}" if teacher else ""))
    try:
        result = train_release(
            Path(release_dir), modality, Path(out), config, teacher or "", teacher_min_confidence, audio_features
        )
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{release_dir}: {exc}") from exc
    taught = f", taught by {teacher}" if teacher else ""
    console.print(f"release {result['release_id']}: {modality}{taught}, test split", highlight=False)
    for name, found in result["test"].items():
        console.print(class_scores(name, found))
    console.print(f"models, results.json and confusion.png in {out}", highlight=False)


def class_scores(title: str, found: dict) -> Table:
    table = Table(title=f"{title}: accuracy {found['accuracy']:.3f}, UAR {found['uar']:.3f}, "
                  f"weighted F1 {found['weighted_f1']:.3f} ({found['n']} clips)")  # fmt: skip
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, c in found["per_class"].items():
        table.add_row(name, f"{c['precision']:.3f}", f"{c['recall']:.3f}", f"{c['f1']:.3f}", str(c["support"]))
    return table


def release_manifest(release_dir: str) -> dict:
    """The manifest.json of a release folder, as `emofactory release` / `run` write it."""
    return json.loads((Path(release_dir) / "manifest.json").read_text())


@main.group()
def review() -> None:
    """Human validation (seed 003, App. C.1): people label a release's clips on the catalog's review
    page (or in Label Studio); each clip's majority, Fleiss' kappa, how often the factory's label is
    theirs, and a validated release of the clips people confirm."""


CATALOG = click.option(
    "--catalog", "catalog", default="", metavar="HOST:PORT",
    help="A catalog service (a cluster's, through port-forward; client TLS and token from EMO_CLIENT__*). "
    "Default: the running local stack's.",
)  # fmt: skip


def catalog_address(catalog: str) -> dict[str, str]:
    return {"catalog": catalog} if catalog else running_stack()


def add_annotators(addresses, names: tuple[str, ...], lead: bool) -> None:
    with open_channel(addresses["catalog"]) as channel:
        for name in names:
            answer = catalog_pb2_grpc.CatalogServiceStub(channel).AddAnnotator(
                catalog_pb2.AddAnnotatorRequest(name=name, lead=lead)
            )
            role = "lead" if lead else "annotator"
            console.print(f"{role} [bold]{answer.name}[/bold]: token {answer.token}", highlight=False)


@review.command("serve")
@click.option("--annotator", "annotators", multiple=True, help="Give this person a token (repeat for each).")
@click.option("--lead", "leads", multiple=True, help="Give this person a lead's token: they also see results.")
@fail_on_rpc
def review_serve(annotators, leads) -> None:
    """The review page of the stack (started for this command where none is up) until Ctrl-C."""
    with connected() as addresses:
        add_annotators(addresses, annotators, lead=False)
        add_annotators(addresses, leads, lead=True)
        console.print(f"review page: [bold]{addresses['review']}[/bold] (Ctrl-C stops)", highlight=False)
        wait_for_signal()


@review.command("annotator")
@click.argument("names", nargs=-1, required=True)
@click.option("--lead", is_flag=True, help="Leads also see the results page.")
@CATALOG
@fail_on_rpc
def review_annotator(names, lead, catalog) -> None:
    """A sign-in token for each of NAMES on the review page (a new one replaces the old)."""
    add_annotators(catalog_address(catalog), names, lead)


@review.command("results")
@click.argument("release_id")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the figures and majorities as JSON.")
@CATALOG
@fail_on_rpc
def review_results(release_id, out, catalog) -> None:
    """What people said about RELEASE_ID's clips on the review page."""
    with open_channel(catalog_address(catalog)["catalog"]) as channel:
        answer = catalog_pb2_grpc.CatalogServiceStub(channel).GetReview(
            catalog_pb2.GetReviewRequest(release=release_id)
        )
    result = MessageToDict(answer, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
    console.print(
        f"{answer.name}: {answer.complete} of {answer.clips} clips have {answer.needed} labels from"
        f" {answer.annotators} annotators; {answer.ambiguous} ambiguous",
        highlight=False,
    )
    print_agreement(result)
    for name, row in result.get("by_annotator", {}).items():
        agrees = f"{row['agrees']:.1%}" if "agrees" in row else "-"
        console.print(f"  {name}: {row['labels']} labels, {row['skipped']} skipped, agrees with the others {agrees}")
    if out:
        Path(out).write_text(json.dumps(result, indent=1))


@review.command("validate")
@click.argument("release_id")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder to download the release to.")
@click.option("--use-human-label", is_flag=True, help="Keep every clip with a majority, labelled with it.")
@click.option("--name", default="", help="Default: the reviewed release's name + ' (validated)'.")
@CATALOG
@fail_on_rpc
def review_validate(release_id, out, use_human_label, name, catalog) -> None:
    """A release of RELEASE_ID's clips whose human majority is the factory's label (or, with
    --use-human-label, every clip with a majority, labelled with it)."""
    request = catalog_pb2.CreateValidatedReleaseRequest(release=release_id, use_human_label=use_human_label, name=name)
    with open_channel(catalog_address(catalog)["catalog"]) as channel:
        answer = catalog_pb2_grpc.CatalogServiceStub(channel).CreateValidatedRelease(request, timeout=1800)
    download_release(answer.release, Path(out))


def print_agreement(result: dict) -> None:
    if result.get("kappa") is not None:
        console.print(f"Fleiss' kappa {result['kappa']:.3f}", highlight=False)
        for name, kappa in result.get("kappa_per_class", {}).items():
            console.print(f"  {name}: {'-' if kappa is None else f'{kappa:.3f}'}", highlight=False)
    if result.get("factory_agrees") is not None:
        console.print(f"the factory's label is the majority's for {result['factory_agrees']:.1%}", highlight=False)
        for name, share in result.get("factory_agrees_per_class", {}).items():
            console.print(f"  {name}: {share:.1%}", highlight=False)


@review.command("tasks")
@click.argument("release_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--media-url", required=True, help="Where the annotators' browsers find the release folder.")
@click.option("--out", default="tasks.json", show_default=True, type=click.Path(dir_okay=False))
def review_tasks(release_dir, media_url, out) -> None:
    """Write RELEASE_DIR's clips as Label Studio tasks, and the labeling configuration beside them."""
    from emofactory.review.labelstudio import label_config, tasks

    manifest = release_manifest(release_dir)
    Path(out).write_text(json.dumps(tasks(manifest, media_url), indent=1, ensure_ascii=False))
    config = Path(out).with_suffix(".xml")
    config.write_text(label_config())
    console.print(f"{len(manifest['clips'])} tasks in {out}; labeling configuration in {config}", highlight=False)


@review.command("agreement")
@click.argument("export", type=click.Path(exists=True, dir_okay=False))
@click.option("--release", "release_dir", type=click.Path(exists=True, file_okay=False), help="Compare its labels.")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the figures and majorities as JSON.")
def review_agreement(export, release_dir, out) -> None:
    """People's labels from a Label Studio JSON EXPORT: majorities, Fleiss' kappa overall and per
    class, and with --release how often the factory's labels are the people's."""
    from emofactory.review.agreement import summary
    from emofactory.review.labelstudio import annotations

    try:
        found = annotations(json.loads(Path(export).read_text()))
    except (ValueError, AttributeError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{export}: {exc}") from exc
    factory = None
    if release_dir:
        factory = {c["clip_id"]: c["label"] for c in release_manifest(release_dir)["clips"]}
    result = summary(found, factory)
    console.print(f"{result['clips']} clips, {result['ambiguous']} ambiguous (no majority)", highlight=False)
    print_agreement(result)
    if out:
        Path(out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
