"""Helpers the test modules share: submitting and awaiting jobs on the stack, word errors, and a
catalog filled as its worker would fill it."""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from emofactory.core.jobs import SETTLED
from emofactory.stages.catalog import db
from emofactory.stages.catalog.records import clip_rows
from emofactory.v1 import common_pb2, events_pb2, ingest_pb2, labeler_pb2, vision_pb2


def submit(
    ingest,
    stack,
    *sources,
    labeler: common_pb2.LabelerOptions | None = None,
    asr: common_pb2.AsrOptions | None = None,
    **config,
) -> str:
    request = ingest_pb2.SubmitJobRequest(
        sources=list(sources),
        language="en-US",
        config=common_pb2.JobConfig(ingest=common_pb2.IngestOptions(allow_hosts=["127.0.0.1"], **config)),
    )
    if labeler is not None:
        request.config.labeler.CopyFrom(labeler)
    if asr is not None:
        request.config.asr.CopyFrom(asr)
    return ingest.SubmitJob(request, timeout=10).job_id


def wait_job(ingest, stack, job_id: str, timeout: float = 90) -> common_pb2.Job:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = ingest.GetJob(ingest_pb2.GetJobRequest(job_id=job_id), timeout=10).job
        if job.state in SETTLED:
            return job
        time.sleep(0.3)
    pytest.fail(f"job {job_id} did not settle: {job}\n{stack.log_tail('ingest')}\n{stack.log_tail('vad')}")


def describe(job: common_pb2.Job) -> str:
    """Each video's stages, states and reasons: what a failed assertion on a job should show."""
    lines = [f"job {job.job_id} {common_pb2.JobState.Name(job.state)} errors={list(job.errors)}"]
    for v in job.videos:
        lines += [f"  {v.source}"] + [
            f"    {s.stage} {common_pb2.StageState.Name(s.state)} {s.reason}" for s in v.stages
        ]
    return "\n".join(lines)


def stage(video: common_pb2.VideoStatus, name: str) -> common_pb2.StageStatus:
    return next(s for s in video.stages if s.stage == name)


JFK = "and so my fellow americans ask not what your country can do for you ask what you can do for your country"


def pcm16k(path) -> np.ndarray:
    cmd = ["ffmpeg", "-v", "error", "-i", str(path), "-ac", "1", "-ar", "16000", "-f", "s16le", "-"]
    return np.frombuffer(subprocess.run(cmd, capture_output=True, check=True).stdout, "<i2")


def word_errors(reference: str, hypothesis: str) -> int:
    ref, hyp = reference.split(), hypothesis.lower().split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row = row, [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (r != h))
    return row[-1]


def labelled_event(video_id: str, job_id: str, labels: list[str], kept: list[bool]) -> events_pb2.SegmentsLabeled:
    context = common_pb2.JobContext(job_id=job_id, language="ar-EG")
    event = events_pb2.SegmentsLabeled(envelope=events_pb2.Envelope(context=context, video_id=video_id))
    for i, (label, keep) in enumerate(zip(labels, kept)):
        sid = f"{video_id}-{i * 2000:08d}-{i * 2000 + 1500:08d}"
        event.segments.add(segment_id=sid, start_s=i * 2.0, end_s=i * 2.0 + 1.5)
        event.vision.append(vision_pb2.SegmentVision(segment_id=sid, face_ratio=1.0, frames=2, face_frames=2))
        event.transcripts.add(segment_id=sid, text=f"utterance {i}", kept=True)
        x = labeler_pb2.SegmentLabel(segment_id=sid)
        x.label.emotion = common_pb2.Emotion.Value(f"EMOTION_{label.upper()}")
        x.label.confidence, x.label.kept = 0.5 + i / 100, keep
        x.label.reasons.append("passes every filter" if keep else "rejected")
        x.label.reason_codes.append("kept" if keep else "modalities_disagree")
        event.labels.append(x)
    return event


def catalog_rows(
    url: str, store, event: events_pb2.SegmentsLabeled, group: str, media: dict[str, bytes] | None = None
) -> None:
    """What the catalog worker writes, with small stand-in media objects (the cutting is tested in
    tests/unit/catalog), or with `media` ({"mp4": ..., "jpg": ...}) as every kept clip's video and frame."""
    Session = db.sessions(url)
    with Session() as session:
        session.merge(db.Video(video_id=event.envelope.video_id, group_key=group, info={}))
        for row in clip_rows(event):
            if row.kept:
                for ext, field in (("mp4", "mp4_key"), ("wav", "wav_key"), ("jpg", "frame_key")):
                    if ext == "jpg" and media is None:
                        continue  # no frame, as for a clip without a face
                    key = f"{event.envelope.video_id}/catalog/{row.clip_id}.{ext}"
                    data = (media or {}).get(ext, f"{ext} of {row.clip_id}".encode())
                    store.put_bytes(key, data, "application/octet-stream")
                    setattr(row, field, key)
                row.sync_ok = True
            session.merge(row)
        session.commit()


def clip_media(folder) -> dict[str, bytes]:
    """A real 1.5 s MP4 (a test pattern with a tone, H.264 + AAC) and a JPEG frame, as a browser plays them."""
    mp4, jpg = folder / "clip.mp4", folder / "frame.jpg"
    video = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1.5"]
    tone = ["-f", "lavfi", "-i", "sine=frequency=440:duration=1.5"]
    encode = ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-movflags", "+faststart"]
    subprocess.run(["ffmpeg", "-v", "error", "-y", *video, *tone, *encode, str(mp4)], check=True)
    subprocess.run(["ffmpeg", "-v", "error", "-y", *video, "-frames:v", "1", str(jpg)], check=True)
    return {"mp4": mp4.read_bytes(), "jpg": jpg.read_bytes()}


class ReviewSite:
    """The review page over a catalog database (SQLite unless `url` names one) and a FileStore holding
    one release of `labels`' clips (real media), served on a free port by the catalog's own server function."""

    def __init__(self, folder, labels: list[str], needed: int = 3, url: str = ""):
        from emofactory.core.store import FileStore
        from emofactory.local import free_port
        from emofactory.review.web import ReviewApp, serve_in_thread
        from emofactory.stages.catalog.config import CatalogConfig
        from emofactory.stages.catalog.publish import create_release
        from emofactory.v1 import catalog_pb2

        self.url = url or f"sqlite:///{folder / 'catalog.db'}"
        self.store = FileStore(folder / "store")
        event = labelled_event("vreview0123456789", "jobreview", labels, [True] * len(labels))
        catalog_rows(self.url, self.store, event, "series:review", clip_media(folder))
        self.config = CatalogConfig(database_url=self.url, review_annotators=needed)
        request = catalog_pb2.CreateReleaseRequest(name="to review", neutral_ratio=0, split_ratios=[1, 0, 0])
        self.release = create_release(self.store, self.config, request, folder / "release")
        self.release_id = self.release.release_id
        app = ReviewApp(self.config, self.store, folder / "cache")
        self.base = f"http://127.0.0.1:{free_port()}"
        self.server = serve_in_thread(app.app, "127.0.0.1", int(self.base.rsplit(":", 1)[1]))

    def annotator(self, name: str, lead: bool = False) -> str:
        from emofactory.review.assignments import add_annotator

        with db.sessions(self.url)() as session:
            return add_annotator(session, name, lead)

    def labels(self) -> dict[str, dict[str, str]]:
        """{clip: {annotator: answer}} as stored, `unsure` and pending (None) included."""
        with db.sessions(self.url)() as session:
            found: dict[str, dict[str, str]] = {}
            for row in session.query(db.Annotation).all():
                found.setdefault(row.clip_id, {})[row.annotator] = row.label
            return found

    def close(self) -> None:
        self.server.should_exit = True


POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/"


@contextlib.contextmanager
def fresh_postgres():
    """A new, empty PostgreSQL database's URL, dropped after; a skip, with its reason, without a server."""
    name = f"emo_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(POSTGRES + "postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server is a skip, with its reason
        pytest.skip(f"no PostgreSQL at {POSTGRES}: {exc}")
    try:
        yield POSTGRES + name
    finally:
        db.engine_for(POSTGRES + name).dispose()  # the cached engine's connections, before the drop
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
