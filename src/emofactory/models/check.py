"""Model settings checked before any work: each model a stage will run is loaded once, where it will
run (in this process), so a path that does not exist, is of no known format or does not load stops the
CLI, or keeps a service NOT_SERVING, with the setting's name and why. Never a job that succeeds with
empty scores because a path had a typo."""

from __future__ import annotations

from collections.abc import Iterable

from emofactory.core.backend import ModelBackend
from emofactory.core.config import MAX_ECHO, ModelsConfig
from emofactory.core.errors import PermanentError, SettingError

# The setting that names each model's weights (the face detector's ship in facenet-pytorch's wheel).
SETTING = {
    "face_detector": "models.face_min_size",
    "facial_emotion": "models.facial_emotion_path",
    "speech_emotion": "models.speech_emotion_path",
    "text_emotion": "models.text_emotion_path",
    "whisper": "models.whisper_path",
}


def load_reason(exc: Exception) -> str:
    """What went wrong, short: our messages as they are, a library's with its type."""
    text = str(exc) if isinstance(exc, PermanentError) else f"does not load ({type(exc).__name__}: {exc})"
    return text[: 2 * MAX_ECHO]


def setting_of(config: ModelsConfig, model: str) -> str:
    if model == "text_emotion" and not config.text_emotion_path:
        return "models.text_emotion_engine"
    return SETTING.get(model, "models")


def load_models(backend: ModelBackend, config: ModelsConfig, names: Iterable[str]) -> None:
    """Loads each of `names` that runs in this process (a model on Triton is Triton's to load); it
    stays loaded for the work. SettingError on the first that does not load."""
    from emofactory.models.backends import in_process  # torch only where models run here

    for name in names:
        local = in_process(backend, name)
        if local is None:
            continue
        try:
            local.model(name)
        except SettingError:
            raise
        except Exception as exc:  # noqa: BLE001 - any loader's failure is the setting's fault, said
            raise SettingError(setting_of(config, name), load_reason(exc)) from exc


def load_multilingual(backend: ModelBackend, config: ModelsConfig) -> None:
    """Whisper's model for other languages than English, loaded now where a setting names one."""
    from emofactory.models.backends import in_process

    local = in_process(backend, "whisper")
    if local is None:
        return
    try:
        local.model("whisper").load_multilingual()
    except Exception as exc:  # noqa: BLE001 - as load_models
        raise SettingError("models.whisper_multilingual_path", load_reason(exc)) from exc
