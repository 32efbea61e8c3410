"""The catalog: leakage-free splits and balancing (properties), clip cutting and the sync check,
and the database suite (rows, idempotence, paging, stats, releases, exports that load back with
`datasets` and `webdataset`) against SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
import wave
from collections import Counter

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select, text

from emofactory.core.config import StoreConfig, load_section
from emofactory.core.errors import InvalidRequest, PermanentError
from emofactory.core.media import read_pcm
from emofactory.core.store import FileStore, ObjectStore
from emofactory.core.video import decode_from, timeline_start
from emofactory.stages.catalog import db
from emofactory.stages.catalog.clips import audio_duration, cut_clips, span_groups
from emofactory.stages.catalog.config import CatalogConfig, checked_options
from emofactory.stages.catalog.publish import create_release, release_params
from emofactory.stages.catalog.queries import list_page, stats
from emofactory.stages.catalog.releases import SPLITS, Candidate, assign_splits, balance, split_release
from emofactory.v1 import catalog_pb2, common_pb2
from tests.helpers import catalog_rows, clip_media, fresh_postgres, labelled_event

RATIOS = (0.7, 0.1, 0.2)


@settings(max_examples=150)
@given(
    st.dictionaries(st.text("abcdefgh", min_size=1, max_size=4), st.integers(1, 30), min_size=1, max_size=40),
    st.integers(0, 5),
)
def test_no_group_spans_two_splits_and_ratios_hold(sizes, seed):
    groups = assign_splits(sizes, RATIOS, seed)
    clips = [Candidate(f"{g}-{i}", "anger", 0.5, g) for g, n in sizes.items() for i in range(n)]
    splits = split_release(clips, RATIOS, seed)
    seen = {}
    for split, members in splits.items():
        for clip in members:
            assert seen.setdefault(clip.group, split) == split  # one split per group
            assert groups[clip.group] == split
    total, largest = sum(sizes.values()), max(sizes.values())
    for split, ratio in zip(SPLITS, RATIOS):
        assert abs(len(splits[split]) - ratio * total) <= largest  # within one group of its share
    assert split_release(clips, RATIOS, seed) == splits  # deterministic


def test_balancing_caps_neutral_and_classes():
    clips = [Candidate(f"n{i:02d}", "neutral", i / 100, "g") for i in range(50)]
    clips += [Candidate(f"a{i:02d}", "anger", 0.5, "g") for i in range(30)]
    clips += [Candidate(f"h{i:02d}", "happiness", 0.5, "g") for i in range(10)]
    chosen = Counter(c.label for c in balance(clips, neutral_ratio=0.15))
    assert chosen == {"anger": 30, "happiness": 10, "neutral": 6}  # 15 % of 40
    kept_neutral = [c.clip_id for c in balance(clips, 0.15) if c.label == "neutral"]
    assert kept_neutral == [f"n{i}" for i in range(44, 50)]  # the most confident
    capped = Counter(c.label for c in balance(clips, neutral_ratio=0, max_per_class=20))
    assert capped == {"neutral": 20, "anger": 20, "happiness": 10}
    assert balance(clips, 0.15, 20, seed=3) == balance(clips, 0.15, 20, seed=3)


def test_clips_are_cut_in_sync_and_wav_is_sample_exact(tmp_path, speech_sample):
    video, truth = speech_sample
    wav = tmp_path / "a.wav"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-ac", "1", "-ar", "16000", str(wav)], check=True)
    pcm, rate = read_pcm(wav)
    segments = [common_pb2.Segment(segment_id=f"vs-{i}", start_s=t.start_s, end_s=t.end_s) for i, t in enumerate(truth)]
    clips = list(cut_clips(video, pcm, rate, segments, tmp_path, CatalogConfig()))
    assert sorted(m.segment_id for m in clips) == sorted(s.segment_id for s in segments)
    for media, segment in zip(sorted(clips, key=lambda m: m.segment_id), segments):
        assert media.sync_ok and media.flags == []
        assert media.audio_duration_s == pytest.approx(segment.end_s - segment.start_s, abs=2e-3)  # its samples
        with wave.open(str(media.wav)) as w:
            assert w.getnframes() == round(segment.end_s * rate) - round(segment.start_s * rate)
            assert np.array_equal(
                np.frombuffer(w.readframes(w.getnframes()), "<i2"),
                pcm[round(segment.start_s * rate) : round(segment.end_s * rate)],
            )


def decoded_frames(path, *args) -> np.ndarray:
    out = subprocess.run(
        ["ffmpeg", "-v", "error", *args, "-i", str(path), "-map", "0:v", "-fps_mode", "passthrough", "-f", "rawvideo",
         "-pix_fmt", "gray", "-"],
        capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(out, np.uint8).reshape(-1, 120, 160).astype(np.int16)


@pytest.mark.parametrize("container", ["mp4", "ts"])
def test_each_clip_holds_exactly_its_spans_frames_with_no_pre_roll(tmp_path, container):
    """Adjacent, overlapping and far-apart segments, boundaries on and between frames: a clip has the
    frames whose time lies in its span (read with edit lists ignored, as decord does), the first of
    them a keyframe, each nearest to the source frame it encodes. Times count from the file's start,
    as the audio stage's WAV does: an MPEG-TS timeline starts at 1.4 s."""
    video = tmp_path / f"moving.{container}"
    cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=20"]
    cmd += ["-f", "lavfi", "-i", "sine=duration=20:sample_rate=44100", "-c:v", "libx264", "-g", "250", "-c:a", "aac"]
    subprocess.run([*cmd, str(video)], check=True)
    spans = [(1.2, 2.5), (2.5, 3.013), (3.3, 4.1), (4.0, 4.9), (15.05, 16.0)]
    segments = [common_pb2.Segment(segment_id=f"vm-{i}", start_s=a, end_s=b) for i, (a, b) in enumerate(spans)]
    pcm = np.zeros(16000 * 20, np.int16)
    config = CatalogConfig(group_gap_s=2.0, cut_workers=2)
    clips = {m.segment_id: m for m in cut_clips(video, pcm, 16000, segments, tmp_path, config)}
    source = decoded_frames(video)
    with av.open(str(video)) as opened:  # where the picture starts on the timeline (MPEG-TS: 23 ms in)
        picture = opened.streams.video[0]
        lead = float(picture.start_time * picture.time_base) - timeline_start(opened)
    for segment in segments:
        media = clips[segment.segment_id]
        assert media.sync_ok and media.audio_duration_s == pytest.approx(segment.end_s - segment.start_s, abs=2e-3)
        first, end = (math.ceil((t - lead) * 25 - 1e-6) for t in (segment.start_s, segment.end_s))
        frames = decoded_frames(media.mp4, "-ignore_editlist", "1")
        assert len(frames) == end - first, segment
        packets = subprocess.run(
            ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=flags", "-of", "csv=p=0",
             str(media.mp4)], capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert packets[0].startswith("K")
        for offset in (0, len(frames) - 1):
            nearest = np.argmin([np.abs(frames[offset] - source[i]).mean() for i in range(len(source))])
            assert nearest == first + offset, (segment, offset)


@pytest.mark.parametrize("container", ["mp4", "ts"])
def test_a_group_is_decoded_from_the_keyframe_before_it_not_from_the_start(tmp_path, container):
    """After decode_from(12.3 s), the first frame decoded lies at or before it and, with a keyframe each
    second, within a second of the margin before it (MP4: its index finds that keyframe), so a group
    late in a long video does not decode everything before it; an MPEG-TS has no index (the seek
    lands on a packet after that keyframe) and is sought further back."""
    video = tmp_path / f"keyframes.{container}"
    cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=20"]
    cmd += ["-f", "lavfi", "-i", "sine=duration=20", "-c:v", "libx264", "-g", "25", "-c:a", "aac", str(video)]
    subprocess.run(cmd, check=True)
    with av.open(str(video)) as source:
        start = timeline_start(source)
        first = {}
        for frame in decode_from(source, source.streams, start + 12.3):
            first.setdefault(type(frame).__name__, float(frame.time) - start)
            if len(first) == 2:
                break
    assert 9.3 <= first["VideoFrame"] <= 12.3 and first["AudioFrame"] <= 12.3, first
    if container == "mp4":
        assert first["VideoFrame"] >= 10.8


def video_size(path) -> str:
    command = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height"]
    return subprocess.run([*command, "-of", "csv=p=0", str(path)], capture_output=True, text=True).stdout.strip()


def test_portrait_phone_video_comes_out_upright_and_odd_sizes_even(tmp_path, monkeypatch):
    """A display matrix (phones record portrait this way) is applied to the pixels, as FFmpeg's
    autorotate does, so readers that ignore it see the clip upright; 4:4:4 at 161x121 becomes
    4:2:0 at 160x120. Cut with no ffmpeg or ffprobe to be found: the catalog's image holds FFmpeg's
    libraries (PyAV) only."""
    plain, turned, odd = tmp_path / "plain.mp4", tmp_path / "turned.mp4", tmp_path / "odd.mp4"
    cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=4"]
    subprocess.run([*cmd, "-c:v", "libx264", str(plain)], check=True)
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(turned)],
        check=True,
    )
    subprocess.run(
        [*cmd[:-1], "testsrc2=size=161x121:rate=25:duration=4", "-c:v", "libx264", "-pix_fmt", "yuv444p", str(odd)],
        check=True,
    )
    segment = common_pb2.Segment(segment_id="vr-0", start_s=1.0, end_s=2.0)
    pcm = np.zeros(16000 * 4, np.int16)
    with monkeypatch.context() as no_command_line:
        no_command_line.setenv("PATH", str(tmp_path))
        (clip,) = cut_clips(turned, pcm, 16000, [segment], tmp_path, CatalogConfig())
    assert video_size(clip.mp4) == "120,160"
    upright = np.frombuffer(
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(turned), "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                       capture_output=True, check=True).stdout, np.uint8,
    ).reshape(-1, 160, 120).astype(np.int16)  # fmt: skip
    first = np.frombuffer(
        subprocess.run(["ffmpeg", "-v", "error", "-i", str(clip.mp4), "-frames:v", "1", "-f", "rawvideo", "-pix_fmt",
                        "gray", "-"], capture_output=True, check=True).stdout, np.uint8,
    ).reshape(160, 120).astype(np.int16)  # fmt: skip
    assert np.argmin([np.abs(first - f).mean() for f in upright]) == 25
    (even,) = cut_clips(odd, pcm, 16000, [segment], tmp_path, CatalogConfig())
    assert video_size(even.mp4) == "160,120" and even.flags == ["out_of_sync"]  # no audio track to be in sync


def test_a_job_may_ask_for_smaller_clips_at_fewer_frames(tmp_path):
    """clip_max_height scales the clip down (the aspect kept, sizes even), clip_max_fps keeps the first
    frame of each 1 / fps of the clip; the audio and the sync check are untouched."""
    video = tmp_path / "moving.mp4"
    cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=6"]
    subprocess.run([*cmd, "-f", "lavfi", "-i", "sine=duration=6", "-c:v", "libx264", "-c:a", "aac", str(video)],
                   check=True)  # fmt: skip
    segment = common_pb2.Segment(segment_id="vs-0", start_s=1.0, end_s=3.0)
    pcm = np.zeros(16000 * 6, np.int16)
    config = checked_options(CatalogConfig(), common_pb2.CatalogOptions(clip_max_height=61, clip_max_fps=10))
    (small,) = cut_clips(video, pcm, 16000, [segment], tmp_path, config)
    assert video_size(small.mp4) == "80,60" and small.sync_ok
    frames = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=nb_read_frames", "-of", "csv=p=0", str(small.mp4)], capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert int(frames) == 20  # 2 s at 10 of the source's 25 frames a second


@pytest.mark.parametrize(
    "options, field",
    [
        (common_pb2.CatalogOptions(preset="turbo"), "options.preset"),
        (common_pb2.CatalogOptions(crf=52), "options.crf"),
        (common_pb2.CatalogOptions(clip_max_height=100_000), "options.clip_max_height"),
        (common_pb2.CatalogOptions(clip_max_fps=0.5), "options.clip_max_fps"),
        (common_pb2.CatalogOptions(clip_max_fps=math.nan), "options"),  # every option: finite numbers only
    ],
)
def test_clip_encoding_a_job_asks_for_is_checked(options, field):
    with pytest.raises(InvalidRequest) as err:
        checked_options(CatalogConfig(), options)
    assert err.value.field == field and options.ListFields()[0][0].name in str(err.value)


def test_a_release_may_reencode_its_clips_smaller(tmp_path):
    url, store = f"sqlite:///{tmp_path / 'small.db'}", FileStore(tmp_path / "store")
    event = labelled_event("vsmall0123456789a", "job", ["anger", "fear"], [True, True])
    catalog_rows(url, store, event, "series:a", clip_media(tmp_path))
    config = CatalogConfig(database_url=url)
    as_cut = create_release(store, config, catalog_pb2.CreateReleaseRequest(name="r"), tmp_path / "as-cut")
    request = catalog_pb2.CreateReleaseRequest(name="r", clip_max_height=120, clip_max_fps=10)
    small = create_release(store, config, request, tmp_path / "small")
    assert small.release_id != as_cut.release_id and len(small.records) == 2
    for record in small.records:
        mp4 = small.root / record["media"]["mp4"]
        assert video_size(mp4) == "160,120" and video_size(as_cut.root / record["media"]["mp4"]) == "320,240"
        assert audio_duration(mp4) == pytest.approx(1.5, abs=0.05)
    assert json.loads((small.root / "manifest.json").read_text())["clips"] == small.records


def test_segments_group_while_the_silence_between_is_short_and_the_group_bounded():
    s = lambda a, b: common_pb2.Segment(segment_id=f"v-{a}", start_s=a, end_s=b)  # noqa: E731
    groups = span_groups([s(12, 14), s(0, 2), s(2, 4), s(5, 9), s(30, 40), s(41, 75)], max_gap_s=2.0, max_span_s=60)
    assert [[x.start_s for x in g] for g in groups] == [[0, 2, 5], [12], [30, 41]]
    assert [len(g) for g in span_groups([s(i, i + 1) for i in range(10)], 2.0, max_span_s=4)] == [4, 4, 2]


def ffprobe_audio_s(path) -> float:
    cmd = ["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries", "stream=duration", "-of", "csv=p=0"]
    out = subprocess.run([*cmd, str(path)], capture_output=True, text=True, check=True).stdout.strip()
    return float(out) if out else 0.0


def test_the_sync_check_reads_the_audio_duration_ffprobe_gives(tmp_path, speech_sample):
    """From the MP4's boxes (edit list, else media duration): copies with a pre-roll, encoded cuts
    with AAC priming, a file without audio; a file that is not an MP4 is a clear error."""
    video, truth = speech_sample
    clips = []
    for i, (copy, start) in enumerate([(True, truth[1].start_s), (True, 0.0), (False, truth[2].start_s)]):
        command = ["ffmpeg", "-v", "error", "-ss", f"{start:.3f}", "-t", "2.7", "-i", str(video)]
        codecs = ["-c", "copy"] if copy else ["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"]
        subprocess.run([*command, *codecs, "-movflags", "+faststart", str(tmp_path / f"c{i}.mp4")], check=True)
        clips.append(tmp_path / f"c{i}.mp4")
    silent = tmp_path / "silent.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(video), "-t", "1", "-an", "-c", "copy", str(silent)], check=True)
    for clip in [*clips, silent, video]:
        assert audio_duration(clip) == pytest.approx(ffprobe_audio_s(clip), abs=1e-6), clip
    assert audio_duration(clips[2]) == pytest.approx(2.7, abs=0.01) and audio_duration(silent) == 0
    text = tmp_path / "notes.mp4"
    text.write_bytes(b"not an mp4 at all" * 10)
    with pytest.raises(PermanentError, match="cannot read the clip's audio in notes.mp4"):
        audio_duration(text)


def test_a_clip_whose_audio_runs_out_is_flagged(tmp_path, speech_sample):
    """Audio ends at 2 s in a 6 s video: the 1-5 s clip cannot be in sync."""
    short = tmp_path / "short.mp4"
    cmd = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=6"]
    cmd += ["-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-c:v", "libx264", "-c:a", "aac", str(short)]
    subprocess.run(cmd, check=True)
    pcm = np.zeros(16000 * 6, np.int16)
    segment = common_pb2.Segment(segment_id="vs-00001000-00005000", start_s=1.0, end_s=5.0)
    (media,) = cut_clips(short, pcm, 16000, [segment], tmp_path, CatalogConfig())
    assert not media.sync_ok and media.flags == ["out_of_sync"] and media.audio_duration_s < 1.5


def test_migrations_match_the_models(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    url = f"sqlite:///{tmp_path / 'm.db'}"
    db.migrate(url)
    with create_engine(url).connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), db.Base.metadata) == []


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    with fresh_postgres() as url:
        yield url


def test_catalog_suite(database_url, stack, tmp_path):
    store = ObjectStore(load_section(StoreConfig, "store"))
    labels = ["anger", "happiness", "neutral", "sadness", "neutral", "fear"]
    videos = [f"vcat{uuid.uuid4().hex[:8]}{i}" for i in range(6)]
    for i, video_id in enumerate(videos):
        event = labelled_event(video_id, "jobcat", labels, [True, True, True, True, i % 2 == 0, False])
        catalog_rows(database_url, store, event, group=f"series:{i // 2}")  # three series of two videos
        catalog_rows(database_url, store, event, group=f"series:{i // 2}")  # a redelivery changes nothing
    Session = db.sessions(database_url)
    with Session() as session:
        assert session.scalar(select(func.count()).select_from(db.Clip)) == 36
        page, token = list_page(session, catalog_pb2.ListClipsRequest(page_size=10))
        assert len(page) == 10 and token == page[-1][0].clip_id
        everything = []
        while True:
            page, token = list_page(
                session, catalog_pb2.ListClipsRequest(page_size=7, page_token=token if everything else "")
            )
            everything += [c.clip_id for c, _, _ in page]
            if not token:
                break
        assert len(everything) == len(set(everything)) == 27  # kept only: 4 per video + 3 extra neutrals
        angry, _ = list_page(session, catalog_pb2.ListClipsRequest(labels=[common_pb2.EMOTION_ANGER]))
        assert len(angry) == 6 and all(c.label == "anger" for c, _, _ in angry)
        summary = stats(session, language="ar")
        assert summary.clips == 27 and summary.duration_s == pytest.approx(27 * 1.5)
    config = CatalogConfig(database_url=database_url, shard_size=4)
    request = catalog_pb2.CreateReleaseRequest(
        name="suite", seed=1, filter=catalog_pb2.ListClipsRequest(language="ar-EG")
    )
    release = create_release(store, config, request, tmp_path / "release")
    records = release.records
    assert Counter(r["label"] for r in records)["neutral"] == round(0.15 * 18)  # 18 non-neutral kept
    by_group = {}
    for r in records:
        assert by_group.setdefault(r["group"], r["split"]) == r["split"]  # no series in two splits
    with Session() as session:
        in_db = {
            (c.clip_id, s)
            for c, _, s in session.execute(
                select(db.Clip, db.Video.group_key, db.ReleaseClip.split)
                .join(db.Video, db.Video.video_id == db.Clip.video_id)
                .join(db.ReleaseClip, db.ReleaseClip.clip_id == db.Clip.clip_id)
                .where(db.ReleaseClip.release_id == release.release_id)
            ).all()
        }
    assert in_db == {(r["clip_id"], r["split"]) for r in records}
    again = create_release(store, config, request, tmp_path / "again")
    assert again.release_id == release.release_id and again.records == records  # same request, same release

    import datasets
    import webdataset as wds

    root = release.root
    files = {p.stem: str(p) for p in (root / "parquet").glob("*.parquet")}
    loaded = datasets.load_dataset("parquet", data_files=files)
    assert {split: loaded[split].num_rows for split in loaded} == dict(Counter(r["split"] for r in records))
    for split in loaded:
        for row in loaded[split]:
            assert (root / row["video"]).read_bytes() == f"mp4 of {row['clip_id']}".encode()
    shards = sorted(str(p) for p in (root / "webdataset").glob("*.tar"))
    samples = list(wds.WebDataset(shards, shardshuffle=False))
    assert sorted(s["__key__"] for s in samples) == sorted(r["clip_id"] for r in records)
    for sample in samples:
        meta = json.loads(sample["json"])
        assert sample["wav"] == f"wav of {meta['clip_id']}".encode() and int(sample["cls"]) == [
            "anger",
            "disgust",
            "fear",
            "happiness",
            "sadness",
            "surprise",
            "neutral",
        ].index(meta["label"])
    lines = (root / "metadata.jsonl").read_text().splitlines()
    assert [json.loads(line)["clip_id"] for line in lines] == [r["clip_id"] for r in records]
    header = (root / "train.csv").read_text().splitlines()[0]
    assert header.startswith("Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,StartTime,EndTime")
    assert (root / "report" / "report.html").exists() and (root / "report" / "classes.png").stat().st_size > 1000


@pytest.mark.hostile
def test_each_job_keeps_its_own_decisions_and_a_release_holds_each_segment_once(tmp_path):
    url, store = f"sqlite:///{tmp_path / 'jobs.db'}", FileStore(tmp_path / "store")
    labels = ["anger", "happiness", "sadness", "fear"]
    for job, kept in (("first", [True] * 4), ("second", [False, True, True, True])):
        catalog_rows(url, store, labelled_event("vjobs0123456789ab", job, labels, kept), "series:a")
    with db.sessions(url)() as session:
        first = session.scalars(select(db.Clip).where(db.Clip.job_id == "first")).all()
        second = session.scalars(select(db.Clip).where(db.Clip.job_id == "second")).all()
        assert all(c.kept for c in first) and [c.kept for c in second] == [False, True, True, True]
        assert [c.segment_id for c in first] == [c.segment_id for c in second]
    config = CatalogConfig(database_url=url)
    mine = create_release(store, config, catalog_pb2.CreateReleaseRequest(
        name="first", filter=catalog_pb2.ListClipsRequest(job_id="first")), tmp_path / "first")  # fmt: skip
    assert len(mine.records) == 4 and all(r["clip_id"].startswith("first_") for r in mine.records)
    both = create_release(store, config, catalog_pb2.CreateReleaseRequest(name="all"), tmp_path / "all")
    segments = [r["clip_id"].rsplit("_", 1)[1] for r in both.records]
    assert len(segments) == len(set(segments)) == 4  # the latest job's clip of each segment, never both


def test_a_release_says_how_many_segments_it_left_out_and_why(tmp_path):
    url, store = f"sqlite:///{tmp_path / 'left.db'}", FileStore(tmp_path / "store")
    labels = ["anger", "neutral", "neutral", "fear", "sadness"]
    catalog_rows(url, store, labelled_event("vleft0123456789ab", "job", labels, [False, True, True, True, False]),
                 "series:a")  # fmt: skip
    config = CatalogConfig(database_url=url, neutral_ratio=1.0)  # one neutral per other kept clip
    release = create_release(store, config, catalog_pb2.CreateReleaseRequest(name="left"), tmp_path / "left")
    assert len(release.records) == 2 and release.not_kept == {"modalities_disagree": 2, "release_balance": 1}
    manifest = json.loads((release.root / "manifest.json").read_text())
    assert manifest["not_kept"] == release.not_kept
    page = (release.root / "report" / "report.html").read_text()
    assert "Segments left out" in page and "modalities_disagree" in page


@pytest.mark.hostile
@pytest.mark.parametrize(
    "request_, field",
    [
        (catalog_pb2.CreateReleaseRequest(name="r", split_ratios=[math.nan, 0.5, 0.5]), "split_ratios"),
        (catalog_pb2.CreateReleaseRequest(name="r", split_ratios=[1.5, -0.25, -0.25]), "split_ratios"),
        (catalog_pb2.CreateReleaseRequest(name="r", neutral_ratio=math.nan), "neutral_ratio"),
        (catalog_pb2.CreateReleaseRequest(name="r", neutral_ratio=-1), "neutral_ratio"),
        (catalog_pb2.CreateReleaseRequest(name="r", max_per_class=-1), "max_per_class"),
        (catalog_pb2.CreateReleaseRequest(name="r\0"), "name"),
        (catalog_pb2.CreateReleaseRequest(name="r", filter=catalog_pb2.ListClipsRequest(labels=[99])), "filter.labels"),
        (catalog_pb2.CreateReleaseRequest(name="r", filter=catalog_pb2.ListClipsRequest(min_confidence=math.nan)),
         "filter.min_confidence"),
        (catalog_pb2.CreateReleaseRequest(name="r", filter=catalog_pb2.ListClipsRequest(language="e" * 10_000)),
         "filter.language"),
        (catalog_pb2.CreateReleaseRequest(name="r", filter=catalog_pb2.ListClipsRequest(page_size=-1)),
         "filter.page_size"),
        (catalog_pb2.CreateReleaseRequest(name="r", clip_max_height=-1), "clip_max_height"),
        (catalog_pb2.CreateReleaseRequest(name="r", clip_max_height=8), "clip_max_height"),
        (catalog_pb2.CreateReleaseRequest(name="r", clip_max_fps=math.inf), "clip_max_fps"),
        (catalog_pb2.CreateReleaseRequest(name="r", clip_max_fps=0.5), "clip_max_fps"),
    ],
)  # fmt: skip
def test_release_parameters_that_would_silently_change_the_dataset_are_refused(request_, field):
    with pytest.raises(InvalidRequest) as err:
        release_params(request_, CatalogConfig())
    assert err.value.field == field and len(str(err.value)) < 300


def test_catalog_replicas_starting_together_migrate_one_after_the_other(tmp_path):
    """Four processes migrate one fresh PostgreSQL database at once: all succeed, the schema is at head."""
    with fresh_postgres() as url:
        code = f"from emofactory.stages.catalog.db import migrate; migrate({url!r})"
        racers = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(4)]
        errors = [p.communicate(timeout=120)[1].decode() for p in racers]
        assert [p.returncode for p in racers] == [0] * 4, errors
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(db.alembic_config(url)).get_current_head()
        with create_engine(url).connect() as c:
            assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
