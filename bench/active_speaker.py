"""The active-speaker check on real media: the assets' talking heads with their own speech (the face
speaks) against the same videos with their audio shifted by several seconds or swapped with another
video's (the face does not). Runs the product's audio, VAD and vision steps on each, then prints
the flag's precision and recall (positive: "the visible face does not speak") at the default
threshold and over a sweep. Then two faces at once: each pair of the talking heads side by side, with
the left one's audio or the right one's, and how often the face taken for the speaker's is the one
that speaks, by the largest face (seed 000) and by the check's pick (pick_speaker). Writes
bench/out/active_speaker.json.
Usage: python -m bench.active_speaker [ASSETS]"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from dev.assets import ASSETS
from emofactory.core.config import ModelsConfig
from emofactory.core.media import probe, read_pcm
from emofactory.models.backends import backend_for
from emofactory.stages.audio.config import AudioConfig
from emofactory.stages.audio.extract import extract_audio
from emofactory.stages.vad.config import VadConfig
from emofactory.stages.vad.segmentation import segment_speech, to_segments
from emofactory.stages.vision.analysis import analyze_video
from emofactory.stages.vision.config import VisionConfig

OUT = Path(__file__).parent / "out"
TALKING_HEADS = ("video/*.mp4", "ravdess/av_mp4/*.mp4", "mead_av/*.mp4")
THRESHOLDS = (-0.1, 0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
PICK_MARGINS = (0.0, 0.1, 0.2, 0.3)
# The side-by-side pictures are this high, each half keeping its aspect.
PAIR_HEIGHT = 360


def with_audio(video: Path, audio: Path, out: Path, shift_s: float) -> Path:
    """`video`'s picture with `audio`'s sound, looped and started `shift_s` in, as long as the picture."""
    cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(video), "-stream_loop", "-1", "-ss", f"{shift_s:.3f}"]
    cmd += ["-i", str(audio), "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", str(out)]
    subprocess.run(cmd, check=True)
    return out


def variants(videos: list[Path], tmp: Path) -> list[tuple[str, Path, bool]]:
    """(name, file, the face speaks) for each video as it is, shifted and swapped."""
    out = []
    for i, video in enumerate(videos):
        duration = probe(video).duration_s
        other = videos[(i + 1) % len(videos)]
        out.append((video.name, video, True))
        shift = max(2.0, 0.4 * duration)
        shifted = with_audio(video, video, tmp / f"{i}-shift.mp4", shift)
        swapped = with_audio(video, other, tmp / f"{i}-swap.mp4", 0.0)
        out.append((f"{video.name} shifted {shift:.1f} s", shifted, False))
        out.append((f"{video.name} with {other.name}'s audio", swapped, False))
    return out


def side_by_side(left: Path, right: Path, audio: Path, out: Path) -> tuple[Path, int]:
    """The two pictures side by side (each PAIR_HEIGHT high) with `audio`'s sound, as long as the
    shorter; and the left picture's width."""
    width = round(probe(left).width * PAIR_HEIGHT / probe(left).height / 2) * 2
    graph = f"[0:v]scale={width}:{PAIR_HEIGHT},setsar=1,fps=25[l];[1:v]scale=-2:{PAIR_HEIGHT},setsar=1,fps=25[r];"
    graph += "[l][r]hstack=shortest=1[v]"
    length = min(probe(left).duration_s, probe(right).duration_s)
    cmd = ["ffmpeg", "-v", "error", "-y", "-i", str(left), "-i", str(right), "-i", str(audio)]
    cmd += ["-filter_complex", graph, "-map", "[v]", "-map", "2:a", "-c:a", "aac", "-t", f"{length:.3f}", str(out)]
    subprocess.run(cmd, check=True)
    return out, width


def pairs(videos: list[Path], tmp: Path) -> list[tuple[str, Path, int, str]]:
    """(name, file, left width, the side that speaks) for each video beside the next one."""
    out = []
    for i, left in enumerate(videos):
        right = videos[(i + 1) % len(videos)]
        for side, audio in (("left", left), ("right", right)):
            path, width = side_by_side(left, right, audio, tmp / f"{i}-pair-{side}.mp4")
            out.append((f"{left.name} | {right.name}, {side} speaks", path, width, side))
    return out


def analyze(path: Path, config: VisionConfig, backend, tmp: Path) -> list:
    """The vision results of each speech segment of one file."""
    wav = tmp / f"{path.stem}.wav"
    extract_audio(path, wav, AudioConfig())
    pcm, rate = read_pcm(wav)
    segments = to_segments(path.stem, segment_speech(pcm, rate, VadConfig()))
    return analyze_video(str(path), probe(path), segments, config, backend)


def scores(path: Path, config: VisionConfig, backend, tmp: Path) -> list[float | None]:
    """The speaker-sync score of each speech segment of one file (None: too short to check)."""
    return [r.speaker_sync for r in analyze(path, config, backend, tmp) if r.face_frames]


def sides(path: Path, left_width: int, config: VisionConfig, backend, tmp: Path) -> list[dict]:
    """Per checked segment with faces on both sides: the side of the face taken for the speaker's."""
    rows = []
    for result in analyze(path, config, backend, tmp):
        centres = [(f.box[0] + f.box[2]) / 2 for f in result.face_frames]
        both = any(len({(face.box[0] + face.box[2]) / 2 < left_width for face in f.found}) == 2 for f in result.frames)
        if result.speaker_sync is not None and centres and both:
            picked = "left" if float(np.median(centres)) < left_width else "right"
            rows.append({"picked": picked, "sync": result.speaker_sync})
    return rows


def two_faces(videos: list[Path], backend, tmp: Path) -> dict:
    """How often the face taken for the speaker's speaks, by the largest face and by the pick."""
    report = {}
    made = pairs(videos, tmp)
    rules = [("largest face", VisionConfig(pick_speaker=False))]
    rules += [(f"pick, margin {m:g}", VisionConfig(pick_speaker=True, pick_margin=m)) for m in PICK_MARGINS]
    for rule, config in rules:
        rows = [
            {"file": name, "speaks": side, **row}
            for name, path, width, side in made
            for row in sides(path, width, config, backend, tmp)
        ]
        right = sum(r["picked"] == r["speaks"] for r in rows)
        report[rule] = {"segments": len(rows), "speaker_right": right, "rows": rows}
        print(f"two faces, {rule:16s}: the speaking face taken in {right} of {len(rows)} segments")
    return report


def precision_recall(rows: list[dict], threshold: float) -> dict:
    checked = [r for r in rows if r["sync"] is not None]
    flagged = [r for r in checked if r["sync"] < threshold]
    silent = [r for r in checked if not r["speaks"]]
    hits = sum(not r["speaks"] for r in flagged)
    return {
        "threshold": threshold,
        "precision": round(hits / len(flagged), 3) if flagged else None,
        "recall": round(hits / len(silent), 3) if silent else None,
        "own_flagged": sum(r["speaks"] for r in flagged),
        "own_checked": sum(r["speaks"] for r in checked),
    }


def main() -> None:
    assets = Path(sys.argv[1]) if len(sys.argv) > 1 else ASSETS
    videos = sorted(p for pattern in TALKING_HEADS for p in assets.glob(pattern))
    if not videos:
        print(f"no talking-head videos under {assets}: the active-speaker check not measured")
        return
    config, backend = VisionConfig(), backend_for(ModelsConfig())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, speaks in variants(videos, Path(tmp)):
            for sync in scores(path, config, backend, Path(tmp)):
                rows.append({"file": name, "speaks": speaks, "sync": sync})
    sweep = [precision_recall(rows, t) for t in THRESHOLDS]
    default = precision_recall(rows, config.min_speaker_sync)
    unchecked = sum(r["sync"] is None for r in rows)
    print(f"\n{len(videos)} talking heads, {len(rows)} segments with a face ({unchecked} too short to check)")
    print(f"{'min_speaker_sync':>16s} {'precision':>10s} {'recall':>7s} {'own speech flagged':>19s}")
    for row in [*sweep, {**default, "threshold": f"{config.min_speaker_sync} (default)"}]:
        own = f"{row['own_flagged']} of {row['own_checked']}"
        print(f"{row['threshold']!s:>16s} {row['precision']!s:>10s} {row['recall']!s:>7s} {own:>19s}")
    with tempfile.TemporaryDirectory() as tmp:
        pair_report = two_faces(videos, backend, Path(tmp))
    OUT.mkdir(exist_ok=True)
    report = {"videos": [str(v) for v in videos], "segments": rows, "sweep": sweep, "default": default}
    report["two_faces"] = pair_report
    (OUT / "active_speaker.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
