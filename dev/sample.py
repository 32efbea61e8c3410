"""Generated sample media with known truth: espeak-ng phrases, each trimmed to its speech, joined
by pauses of known length, muxed under a 640x480 test-pattern video with a real face on it (the
astronaut photo that scikit-image ships). Used by the demo, the tests and the benchmarks; needs
ffmpeg, espeak-ng and scikit-image."""

from __future__ import annotations

import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 16000
# Samples quieter than this (int16) count as silence when trimming a phrase.
TRIM_LEVEL = 400

PHRASES = (
    ("en-us", "Welcome to the emotion factory demonstration"),
    ("en-us+f3", "Every clip is cut where the speaker pauses"),
    ("en-us", "The pipeline keeps only the speech between silences"),
    ("en-us+f3", "This sentence closes the generated sample"),
)


@dataclass(frozen=True)
class Phrase:
    voice: str
    text: str
    start_s: float
    end_s: float


def speak(text: str, voice: str, pitch: int = 50) -> np.ndarray:
    """espeak-ng speech at 16 kHz, trimmed to where the speech starts and ends."""
    with tempfile.TemporaryDirectory() as tmp:
        raw, wav = Path(tmp) / "raw.wav", Path(tmp) / "16k.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", "150", "-w", str(raw), text], check=True)
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-i", str(raw), "-ar", str(RATE), "-ac", "1", str(wav)], check=True
        )
        with wave.open(str(wav)) as w:
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > TRIM_LEVEL)
    return pcm[loud[0] : loud[-1] + 1]


def write_wav(path: Path, pcm: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.astype("<i2").tobytes())


def speech_track(
    path: Path, phrases=PHRASES, pause_s: float = 1.0, lead_s: float = 0.5, repeat: int = 1
) -> list[Phrase]:
    """Writes the speech WAV; returns each phrase with its true start and end."""
    parts, truth, t = [np.zeros(int(lead_s * RATE), np.int16)], [], lead_s
    spoken = {}
    for _ in range(repeat):
        for voice, text in phrases:
            pcm = spoken.setdefault((voice, text), speak(text, voice))
            truth.append(Phrase(voice, text, round(t, 3), round(t + len(pcm) / RATE, 3)))
            parts += [pcm, np.zeros(int(pause_s * RATE), np.int16)]
            t += len(pcm) / RATE + pause_s
    write_wav(path, np.concatenate(parts))
    return truth


FACE_SIZE = (200, 240)


def face_image(path: Path) -> Path:
    """A PNG of a real face: the head of scikit-image's astronaut photo (Eileen Collins, NASA,
    public domain), FACE_SIZE pixels."""
    from PIL import Image
    from skimage import data

    width, height = FACE_SIZE
    Image.fromarray(data.astronaut()[20 : 20 + height, 125 : 125 + width]).save(path)
    return path


# The astronaut's mouth in face_image's pixels (top-left of the patch drawn over it) and the patch's
# size: a dark opening whose height follows the speech's loudness, so that the face speaks the track.
MOUTH_AT = (85, 117)
MOUTH_SIZE = (28, 14)


def mouth_frames(wav: Path, fps: int) -> bytes:
    """RGBA frames of the mouth patch, one per video frame: transparent, with a dark ellipse as open
    as the speech is loud in that frame (closed in silence)."""
    with wave.open(str(wav)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
        rate = w.getframerate()
    step = rate // fps
    rms = np.array([np.sqrt(np.mean(pcm[i : i + step] ** 2)) for i in range(0, len(pcm) - step + 1, step)])
    openness = np.sqrt(rms / max(float(rms.max()), 1e-6))
    width, height = MOUTH_SIZE
    y, x = np.mgrid[:height, :width]
    ellipse = ((x - (width - 1) / 2) / (width / 2 - 2)) ** 2
    frames = np.zeros((len(openness), height, width, 4), np.uint8)
    frames[..., :3] = (70, 20, 25)
    for frame, level in zip(frames, openness):
        half = level * (height / 2 - 1)
        if half >= 0.5:
            frame[..., 3] = 255 * (ellipse + ((y - (height - 1) / 2) / half) ** 2 <= 1)
    return frames.tobytes()


def mux_video(
    wav: Path, out: Path, size: str = "640x480", fps: int = 25, audio: bool = True, face: Path | None = None
) -> Path:
    """A test-pattern video as long as the WAV, with the WAV as its AAC track (or no track), and
    with the `face` image in the middle of the picture when one is given, its mouth moving with the
    speech (mouth_frames)."""
    with wave.open(str(wav)) as w:
        seconds = w.getnframes() / w.getframerate()
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi"]
    cmd += ["-i", f"testsrc2=size={size}:rate={fps}:duration={seconds:.3f}"]
    cmd += ["-i", str(wav)] if audio else []
    mouth = None
    if face is not None:
        mouth = mouth_frames(wav, fps)
        face_in = 2 if audio else 1
        cmd += ["-loop", "1", "-i", str(face)]
        cmd += ["-f", "rawvideo", "-pix_fmt", "rgba", "-s", "{}x{}".format(*MOUTH_SIZE), "-r", str(fps), "-i", "pipe:0"]
        x, y = MOUTH_AT
        graph = f"[0:v][{face_in}:v]overlay=(W-w)/2:(H-h)/2:shortest=1[f];"
        graph += f"[f][{face_in + 1}:v]overlay=(W-{FACE_SIZE[0]})/2+{x}:(H-{FACE_SIZE[1]})/2+{y}:eof_action=pass[v]"
        cmd += ["-filter_complex", graph, "-map", "[v]"]
        cmd += ["-map", "1:a"] if audio else []
    cmd += ["-c:a", "aac", "-b:a", "64k"] if audio else []
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-shortest"]
    cmd += ["-movflags", "+faststart", str(out)]
    subprocess.run(cmd, check=True, input=mouth)
    return out


def sample_video(
    out: Path, pause_s: float = 1.0, repeat: int = 1, size: str = "640x480", face: bool = True
) -> list[Phrase]:
    """The bundled demo sample: an MP4 with speech, pauses and a visible face; returns the true
    speech spans."""
    wav = out.with_suffix(".wav")
    truth = speech_track(wav, pause_s=pause_s, repeat=repeat)
    mux_video(wav, out, size=size, face=face_image(out.with_suffix(".face.png")) if face else None)
    return truth
