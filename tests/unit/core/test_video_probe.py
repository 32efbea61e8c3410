"""The PyAV probe (core.video, for the services whose image has FFmpeg's libraries and not its
command line) says of a file what ffprobe (core.media) says."""

from __future__ import annotations

import subprocess

import pytest

from emofactory.core import media, video
from emofactory.core.errors import PermanentError

LAVFI = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("probe")
    out = {name: folder / name for name in ("av.mp4", "turned.mp4", "speech.wav", "cover.mp3")}
    picture = "testsrc2=size=320x240:rate=30000/1001:duration=2"
    tone = ["-f", "lavfi", "-i", "sine=duration=2:sample_rate=44100", "-ac", "2"]
    subprocess.run([*LAVFI, picture, *tone, "-c:v", "libx264", "-c:a", "aac", str(out["av.mp4"])], check=True)
    turn = ["-c", "copy", "-metadata:s:v:0", "rotate=90"]
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(out["av.mp4"]), *turn, str(out["turned.mp4"])], check=True)
    subprocess.run([*LAVFI, "sine=duration=1.5:sample_rate=16000", str(out["speech.wav"])], check=True)
    cover = folder / "cover.jpg"
    subprocess.run([*LAVFI, "testsrc2=size=64x64", "-frames:v", "1", str(cover)], check=True)
    art = ["-i", str(cover), "-map", "0:a", "-map", "1:v", "-c:v", "copy", "-disposition:v", "attached_pic"]
    subprocess.run([*LAVFI, "sine=duration=1", *art, str(out["cover.mp3"])], check=True)
    return out


@pytest.mark.parametrize("name", ["av.mp4", "turned.mp4", "speech.wav", "cover.mp3"])
def test_the_pyav_probe_says_what_ffprobe_says(files, name):
    ours, theirs = video.probe(files[name]), media.probe(files[name])
    # the container's duration as each FFmpeg computes it (PyAV's wheel is a newer one than Debian's)
    assert ours.duration_s == pytest.approx(theirs.duration_s, abs=0.1) and ours.duration_s > 0.9
    ours.duration_s = theirs.duration_s = 0
    assert ours == theirs


def test_what_each_probe_finds(files):
    turned, cover = video.probe(files["turned.mp4"]), video.probe(files["cover.mp3"])
    assert (turned.width, turned.height, round(turned.fps, 2), turned.channels) == (240, 320, 29.97, 2)
    assert video.display_rotation(files["turned.mp4"]) % 180 == 90 and video.display_rotation(files["av.mp4"]) == 0
    assert cover.has_audio and not cover.has_video  # cover art is not a picture to analyse


def test_a_file_that_is_not_media_is_a_permanent_error(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 100)
    with pytest.raises(PermanentError, match="not a readable media file"):
        video.probe(text)
