"""The active-speaker check on real media: the assets' talking heads with their own speech (the face
speaks) against the same videos with their audio shifted by several seconds or swapped with another
video's (the face does not). Runs the product's audio, VAD and vision steps on each, then prints
the flag's precision and recall (positive: "the visible face does not speak") at the default
threshold and over a sweep, and writes bench/out/active_speaker.json.
Usage: python -m bench.active_speaker [ASSETS]"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

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


def scores(path: Path, config: VisionConfig, backend, tmp: Path) -> list[float | None]:
    """The speaker-sync score of each speech segment of one file (None: too short to check)."""
    wav = tmp / f"{path.stem}.wav"
    extract_audio(path, wav, AudioConfig())
    pcm, rate = read_pcm(wav)
    segments = to_segments(path.stem, segment_speech(pcm, rate, VadConfig()))
    results = analyze_video(str(path), probe(path), segments, config, backend)
    return [r.speaker_sync for r in results if r.face_frames]


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
    OUT.mkdir(exist_ok=True)
    report = {"videos": [str(v) for v in videos], "segments": rows, "sweep": sweep, "default": default}
    (OUT / "active_speaker.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
