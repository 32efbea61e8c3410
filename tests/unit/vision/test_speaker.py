"""The active-speaker check: MTCNN's landmarks, the mouth region, the sync score, and on generated
media a face that speaks the track against the same face under the track shifted (it does not)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from skimage import data

from dev import sample
from emofactory.core.config import ModelsConfig
from emofactory.core.errors import InvalidRequest
from emofactory.core.media import read_pcm
from emofactory.core.video import probe
from emofactory.models.backends import backend_for
from emofactory.stages.audio.config import AudioConfig
from emofactory.stages.audio.extract import extract_audio
from emofactory.stages.labeler.config import LabelerConfig
from emofactory.stages.labeler.labels import label_segments
from emofactory.stages.labeler.stage import evidence_of
from emofactory.stages.vision.analysis import Face, FrameFaces, analyze_video
from emofactory.stages.vision.config import VisionConfig, checked_options
from emofactory.stages.vision.decode import decode_audio
from emofactory.stages.vision.speaker import RATE, face_tracks, mouth_box, sync_score
from emofactory.stages.vision.stage import summarize
from emofactory.v1 import common_pb2, events_pb2, labeler_pb2, vision_pb2


@pytest.fixture(scope="module")
def backend():
    return backend_for(ModelsConfig())


@pytest.fixture(scope="module")
def shifted_sample(speech_sample, tmp_path_factory):
    """The sample's picture under its own track started 6 s in (looped): the mouth moves out of time."""
    video = speech_sample[0]
    out = tmp_path_factory.mktemp("speaker") / "shifted.mp4"
    cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(video), "-stream_loop", "-1", "-ss", "6", "-i", str(video)]
    cmd += ["-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", str(out)]
    subprocess.run(cmd, check=True)
    return out


def phrases(truth) -> list[common_pb2.Segment]:
    return [common_pb2.Segment(segment_id=f"v-{i}", start_s=p.start_s, end_s=p.end_s) for i, p in enumerate(truth)]


def test_the_detector_gives_five_landmarks_on_the_face(backend):
    out = backend.infer("face_detector", {"images": data.astronaut()[None]})
    assert out["landmarks"].shape == (1, 1, 5, 2)
    (x1, y1, x2, y2), points = out["boxes"][0, 0], out["landmarks"][0, 0]
    assert ((points[:, 0] > x1) & (points[:, 0] < x2) & (points[:, 1] > y1) & (points[:, 1] < y2)).all()
    eyes, nose, mouth = points[:2], points[2], points[3:]
    assert eyes[:, 1].max() < nose[1] < mouth[:, 1].min()  # eyes above the nose above the mouth
    assert eyes[0, 0] < eyes[1, 0] and mouth[0, 0] < mouth[1, 0]  # left before right


def test_the_mouth_box_is_around_the_corners_and_scaled():
    points = np.array([[0, 0], [0, 0], [0, 0], [10, 20], [30, 20]], np.float32)
    assert mouth_box(points, np.array([1.0, 1.0])) == (5, 11, 35, 35)  # 1.5 widths, mostly below
    assert mouth_box(points, np.array([0.5, 0.5])) == (2, 6, 18, 18)


def test_the_sync_score_is_a_correlation_and_none_where_flat():
    t = np.linspace(0, 6, 60)
    voice = np.sin(t * 3)
    assert sync_score(voice + 0.1 * np.cos(t * 17), voice) > 0.9
    assert sync_score(-voice, voice) < -0.9
    assert sync_score(np.ones(60), voice) is None and sync_score(voice[:3], voice[:3]) is None


def test_a_face_that_speaks_is_not_flagged_and_one_out_of_time_is(backend, speech_sample, shifted_sample):
    video, truth = speech_sample
    config = VisionConfig()
    own = analyze_video(str(video), probe(video), phrases(truth), config, backend)
    shifted = analyze_video(str(shifted_sample), probe(shifted_sample), phrases(truth), config, backend)
    assert all(r.speaker_sync is not None for r in own + shifted)  # every phrase is over speaker_min_s
    own_flagged = sum("off_screen_speaker" in summarize(r, config).flags for r in own)
    shifted_flagged = sum("off_screen_speaker" in summarize(r, config).flags for r in shifted)
    assert own_flagged == 0 and shifted_flagged >= len(shifted) - 1
    assert np.mean([r.speaker_sync for r in own]) > np.mean([r.speaker_sync for r in shifted]) + 0.3
    assert summarize(own[0], config).HasField("speaker_sync")


@pytest.fixture(scope="module")
def two_faces(speech_sample, tmp_path_factory):
    """The sample's face speaking its track (left, 0.7 of the height) beside the same picture 6 s
    later (right, full height, so the largest: its mouth moves out of time), with the left one's sound;
    and the left picture's width."""
    video = speech_sample[0]
    out = tmp_path_factory.mktemp("speaker") / "two.mp4"
    graph = "[0:v]scale=-2:336,pad=iw:480:0:72[l];[1:v]scale=-2:480[r];[l][r]hstack=shortest=1[v]"
    cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(video), "-stream_loop", "-1", "-ss", "6", "-i", str(video)]
    cmd += ["-filter_complex", graph, "-map", "[v]", "-map", "0:a", "-c:a", "aac", str(out)]
    subprocess.run(cmd, check=True)
    return out, round(probe(video).width * 336 / probe(video).height / 2) * 2


def test_a_spans_audio_is_the_audio_stages_track_at_the_same_times(speech_sample, tmp_path):
    """The check's audio of a span (PyAV, in process) lines up with the audio stage's WAV (FFmpeg):
    the same samples at the same instants, not a frame of audio early or late."""
    video = speech_sample[0]
    extract_audio(video, tmp_path / "a.wav", AudioConfig(source_rate_audio=False))
    whole, rate = read_pcm(tmp_path / "a.wav")
    assert rate == RATE
    span = decode_audio(str(video), 2.3, 5.1)
    assert len(span) == round(2.8 * RATE)
    track = whole[round(2.3 * RATE) : round(2.3 * RATE) + len(span)] / 32768.0
    assert np.corrcoef(span, track)[0, 1] > 0.98
    assert decode_audio(str(tmp_path / "a.wav"), 0.0, 1.0) is not None  # audio alone
    assert decode_audio(str(tmp_path / "missing.mp4"), 0.0, 1.0) is None


def test_face_tracks_follow_each_face_from_frame_to_frame():
    def frame(t, *xs):
        found = [Face(np.array([x, 10, x + 40, 50, 0.99], np.float32), None, np.zeros(1)) for x in xs]
        return FrameFaces(t, len(found), found, 0 if found else None)

    frames = [frame(0, 0, 100), frame(1, 102, 3), frame(2, 5), frame(3, 300)]
    tracks = face_tracks(frames)
    assert [[(f.time_s, k) for f, k in t] for t in tracks] == [[(0, 0), (1, 1), (2, 0)], [(0, 1), (1, 0)], [(3, 0)]]


def test_of_two_faces_the_one_that_speaks_is_taken_not_the_largest(backend, speech_sample, two_faces):
    video, left_width = two_faces
    phrases_ = phrases(speech_sample[1])
    sides = {}
    for pick in (False, True):
        results = analyze_video(str(video), probe(video), phrases_, VisionConfig(pick_speaker=pick), backend)
        assert all(max(f.faces for f in r.frames) == 2 for r in results)
        sides[pick] = [np.median([(f.box[0] + f.box[2]) / 2 for f in r.face_frames]) < left_width for r in results]
    assert not any(sides[False])  # the largest face: the right one, out of time
    assert sum(sides[True]) >= len(phrases_) - 1  # the pick: the left one, which speaks


def test_no_check_without_audio_or_when_turned_off(backend, speech_sample, tmp_path):
    video, truth = speech_sample
    face = sample.face_image(tmp_path / "face.png")
    silent_video = sample.mux_video(video.with_suffix(".wav"), tmp_path / "silent.mp4", audio=False, face=face)
    off = analyze_video(str(video), probe(video), phrases(truth)[:1], VisionConfig(speaker_fps=0), backend)
    silent = analyze_video(str(silent_video), probe(silent_video), phrases(truth)[:1], VisionConfig(), backend)
    for (result,) in (off, silent):
        assert result.face_frames and result.speaker_sync is None
        summary = summarize(result, VisionConfig())
        assert not summary.HasField("speaker_sync") and "off_screen_speaker" not in summary.flags


@pytest.mark.hostile
@pytest.mark.parametrize(
    "field, value", [("speaker_fps", -1.0), ("speaker_fps", 31.0), ("speaker_min_s", 0.1), ("min_speaker_sync", 2.0)]
)
def test_speaker_options_are_checked_by_field(field, value):
    with pytest.raises(InvalidRequest, match=f"options.{field}"):
        checked_options(VisionConfig(), common_pb2.VisionOptions(**{field: value}))


@pytest.mark.hostile
def test_a_pick_margin_out_of_range_is_refused():
    with pytest.raises(InvalidRequest, match="pick_margin"):
        checked_options(VisionConfig(pick_margin=-0.1), common_pb2.VisionOptions())


def test_a_flagged_face_does_not_label_the_segment_unless_the_job_allows_it():
    segment = common_pb2.Segment(segment_id="v-0", start_s=0, end_s=2)
    happy = common_pb2.EmotionScores(happiness=0.97, neutral=0.03, model="fer")
    face = vision_pb2.SegmentVision(
        segment_id="v-0", frames=2, face_frames=2, face_ratio=1, face=happy, flags=["off_screen_speaker"]
    )
    vision = events_pb2.VisionAnalyzed(segments=[segment], vision=[face])
    (flagged,) = evidence_of(vision, events_pb2.SpeechTranscribed())
    assert flagged.speaker_off_screen
    (dropped,) = label_segments([flagged], None, 16000, LabelerConfig(), backend=None)
    assert not dropped.label.kept and not dropped.HasField("face")
    assert any("off_screen_speaker" in why for why in dropped.label.reasons)
    (allowed,) = label_segments([flagged], None, 16000, LabelerConfig(face_needs_speaker=False), backend=None)
    assert allowed.label.kept and allowed.label.emotion == common_pb2.EMOTION_HAPPINESS
    speaking = labeler_pb2.SegmentEvidence(segment=segment, face=happy, face_ratio=1)
    (kept,) = label_segments([speaking], None, 16000, LabelerConfig(), backend=None)
    assert kept.label.kept
