import pytest

from emofactory.core.config import BusConfig, apply_options, check_settings, load_section
from emofactory.pipeline import SETTINGS
from emofactory.stages.vad.config import VadConfig
from emofactory.v1 import common_pb2


def test_defaults_are_the_seeds():
    config = VadConfig()
    assert (config.frame_ms, config.min_segment_s, config.min_silence_s) == (30, 0.5, 0.3)


def test_env_overrides_with_types():
    env = {"EMO_VAD__AGGRESSIVENESS": "3", "EMO_VAD__SPEAKER_CHANGE": "false", "EMO_BUS__NAK_DELAYS_S": "1,2.5"}
    assert load_section(VadConfig, "vad", env).aggressiveness == 3
    assert load_section(VadConfig, "vad", env).speaker_change is False
    assert load_section(BusConfig, "bus", env).nak_delays_s == (1.0, 2.5)


def test_yaml_file_then_env(tmp_path):
    path = tmp_path / "emo.yaml"
    path.write_text("vad:\n  min_silence_s: 0.5\n  aggressiveness: 1\n")
    env = {"EMO_CONFIG": str(path), "EMO_VAD__AGGRESSIVENESS": "2"}
    config = load_section(VadConfig, "vad", env)
    assert (config.min_silence_s, config.aggressiveness) == (0.5, 2)


@pytest.mark.hostile
def test_unknown_or_bad_settings_are_named():
    with pytest.raises(ValueError, match="unknown setting 'agressiveness'"):
        load_section(VadConfig, "vad", {"EMO_VAD__AGRESSIVENESS": "3"})
    with pytest.raises(ValueError, match="aggressiveness"):
        load_section(VadConfig, "vad", {"EMO_VAD__AGGRESSIVENESS": "high"})


def test_per_job_options_override_only_what_is_set():
    options = common_pb2.VadOptions(max_segment_s=3.0, speaker_change=False)
    config = apply_options(VadConfig(aggressiveness=1), options)
    assert (config.max_segment_s, config.speaker_change, config.aggressiveness) == (3.0, False, 1)
    assert apply_options(VadConfig(), common_pb2.VadOptions()) == VadConfig()


def test_a_settings_file_with_an_unknown_section_or_setting_stops_with_its_name(tmp_path):
    path = tmp_path / "emo.yaml"
    path.write_text("vda:\n  aggressiveness: 1\n")
    with pytest.raises(ValueError, match="unknown section 'vda'"):
        check_settings(SETTINGS, {"EMO_CONFIG": str(path)})
    path = tmp_path / "emo2.yaml"
    path.write_text("job: {}\nvad:\n  agressiveness: 1\n")
    with pytest.raises(ValueError, match="emo2.yaml: vad: unknown setting 'agressiveness'"):
        check_settings(SETTINGS, {"EMO_CONFIG": str(path)})


@pytest.mark.hostile
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_where_they_enter(value):
    from emofactory.core.config import options_over
    from emofactory.core.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match=r"VadOptions.min_segment_s: must be a finite number"):
        options_over(VadConfig(), common_pb2.VadOptions(min_segment_s=value))
    with pytest.raises(ValueError, match=r"EMO_VAD.min_silence_s: must be a finite number"):
        load_section(VadConfig, "vad", {"EMO_VAD__MIN_SILENCE_S": str(value)})


@pytest.mark.hostile
def test_texts_are_bounded_and_errors_do_not_echo_them():
    from emofactory.core.config import MAX_ECHO, ModelsConfig

    with pytest.raises(ValueError, match="must not contain a NUL character"):
        load_section(ModelsConfig, "models", {"EMO_MODELS__WHISPER_PATH": "/models/a\x00b"})
    with pytest.raises(ValueError, match="at most 4096 characters, not 1500000") as err:
        load_section(ModelsConfig, "models", {"EMO_MODELS__WHISPER_PATH": "x" * 1_500_000})
    with pytest.raises(ValueError) as err:
        load_section(VadConfig, "vad", {"EMO_VAD__AGGRESSIVENESS": "9" * 100_000 + "x"})
    assert len(str(err.value)) < MAX_ECHO + 40
    with pytest.raises(ValueError, match="at most 256 items, not 300"):
        load_section(BusConfig, "bus", {"EMO_BUS__NAK_DELAYS_S": ",".join(["1"] * 300)})
