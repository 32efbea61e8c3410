import wave

import pytest

from emofactory.core.errors import PermanentError
from emofactory.stages.audio.config import AudioConfig
from emofactory.stages.audio.extract import extract_audio


def test_extracts_16k_mono_pcm(speech_sample, tmp_path):
    video, truth = speech_sample
    info = extract_audio(video, tmp_path / "a.wav", AudioConfig())
    assert info.has_video and info.has_audio and (info.width, info.height) == (640, 480)
    with wave.open(str(tmp_path / "a.wav")) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        assert abs(wav.getnframes() / 16000 - info.duration_s) < 0.1
    assert info.duration_s > truth[-1].end_s


def test_same_video_gives_the_same_bytes(speech_sample, tmp_path):
    extract_audio(speech_sample[0], tmp_path / "1.wav", AudioConfig())
    extract_audio(speech_sample[0], tmp_path / "2.wav", AudioConfig())
    assert (tmp_path / "1.wav").read_bytes() == (tmp_path / "2.wav").read_bytes()


def test_video_without_audio_is_a_clear_failure(silent_video, tmp_path):
    with pytest.raises(PermanentError, match="no audio track"):
        extract_audio(silent_video, tmp_path / "a.wav", AudioConfig())


def test_not_a_video_is_a_clear_failure(not_a_video, tmp_path):
    with pytest.raises(PermanentError, match="not a readable media file"):
        extract_audio(not_a_video, tmp_path / "a.wav", AudioConfig())


def test_truncated_video_is_a_clear_failure(corrupt_video, tmp_path):
    with pytest.raises(PermanentError, match="not a readable media file|could not be decoded|corrupt"):
        extract_audio(corrupt_video, tmp_path / "a.wav", AudioConfig())
