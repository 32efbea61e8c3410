from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from emofactory.core.config import options_over
from emofactory.core.errors import InvalidRequest

STRATEGIES = ("logit_fusion", "vote")
MODALITIES = ("text", "audio", "face")


@dataclass(frozen=True)
class LabelerConfig:
    """Fused labels; defaults from seed 003 §3.2 and App. C (seed 002 §3.5 for `vote`)."""

    # "logit_fusion" (seed 003) or "vote" (seed 002: face majority vote confirmed by audio).
    strategy: str = "logit_fusion"
    # Modalities logit_fusion combines. Seed 003 fuses text and audio, with face presence as a filter;
    # here the face is fused too, and the text is not by default: on face and speech files of the assets
    # paired by label (`emofactory eval`'s fused (paired), 351 pairs), text + audio gives accuracy 0.50,
    # UAR 0.45; face + audio 0.66 / 0.69, 0.87 right of kept at 0.32 yield; adding the text changes
    # accuracy by 0.01 and its agreement cuts the yield to 0.10 (acted sentences are neutral text).
    modalities: tuple[str, ...] = ("face", "audio")
    # λ of the KL penalty.
    fusion_lambda: float = 0.5
    # θf: segments with less face presence are rejected.
    min_face_ratio: float = 0.9
    # θt, θa: a non-neutral label needs σ(l_neutral) of text and audio below these, l the model's log
    # probability (σ(l) < 0.3: p < 0.43). Seed 003's 0.05 for audio only rejected right labels on the
    # assets' pairs (kept 0.26 of them, 0.84 right; 0.3: 0.32, 0.87 right; higher: the same as 0.3).
    max_text_neutral: float = 0.05
    max_audio_neutral: float = 0.3
    # Neutral labels kept per non-neutral label kept, per video (seed 003: about 15 %).
    neutral_share: float = 0.15
    # Keep a label only where the fused modalities' top classes agree.
    require_agreement: bool = True
    # Keep a label only where at least this many modalities gave scores. 1: what ships labels (the face;
    # no speech-emotion model ships), a label one modality alone supports held to single_min_confidence.
    min_modalities: int = 1
    # A label only one of the fused modalities gave scores for (nothing to agree with) is kept only where
    # its confidence is at least this. `emofactory eval` with no settings (face alone, T 1.5), on the
    # assets' 39 face files / 351 face+speech pairs: 0.45 keeps 0.67 / 0.65 of them, 0.69 / 0.62 right;
    # 0.5: 0.49 / 0.43, 0.79 / 0.77 right; 0.55: 0.31 / 0.28, 0.92 right. Labels two modalities gave
    # are held to their agreement instead (with the SER CNN: 0.32 of the pairs kept, 0.87 right).
    single_min_confidence: float = 0.5
    # The speech-emotion model hears each segment widened by this much audio either side: the SER
    # CNN was trained on whole RAVDESS files, silence around the sentence included. Measured on the
    # 58 labelled speech files of shared/assets at the source rate: 0 s 18 right, 0.25 s 25, 0.5 s 32.
    audio_context_s: float = 0.5
    # Per-modality temperatures of logit_fusion, as modality=T items ("face=1.5"); unnamed: 1. A modality's
    # weight in S(e) is 1/T. Fitted by `emofactory calibrate` for the default models (mini-XCEPTION +
    # facex, the SER CNN, MiniLM zero-shot text) on the assets' 6 audio-visual files and 351 face/speech
    # pairs: fused NLL 2.96 -> 0.98 (1.04 on held-out speakers), ECE 0.36 -> 0.03. The acted sentences
    # are neutral text, so the text gets the grid's highest T. Refit for other models.
    fusion_temperatures: tuple[str, ...] = ("face=1.5", "audio=6", "text=32")
    # The face's scores count only where the face speaks: a segment vision flagged off_screen_speaker (its
    # active-speaker check, VisionConfig.min_speaker_sync) is labelled by its other modalities alone.
    face_needs_speaker: bool = True

    @property
    def temperatures(self) -> dict[str, float]:
        return {m: float(t) for m, _, t in (item.partition("=") for item in self.fusion_temperatures)}


def checked_options(defaults: LabelerConfig, options) -> LabelerConfig:
    config = options_over(defaults, options)
    if config.strategy not in STRATEGIES:
        raise InvalidRequest("options.strategy", f"must be one of {', '.join(STRATEGIES)}, not {config.strategy!r}")
    unknown = set(config.modalities) - set(MODALITIES)
    if unknown or not config.modalities:
        raise InvalidRequest("options.modalities", f"a non-empty subset of {', '.join(MODALITIES)}, not {unknown}")
    for name in ("min_face_ratio", "max_text_neutral", "max_audio_neutral", "single_min_confidence"):
        if not 0 <= getattr(config, name) <= 1:
            raise InvalidRequest(f"options.{name}", f"must be in [0, 1], not {getattr(config, name)}")
    if not 0 <= config.audio_context_s <= 5:
        raise InvalidRequest("options.audio_context_s", f"must be in [0, 5] seconds, not {config.audio_context_s}")
    if config.fusion_lambda < 0 or config.neutral_share < 0:
        raise InvalidRequest("options", "fusion_lambda and neutral_share must not be negative")
    if not 1 <= config.min_modalities <= len(MODALITIES):
        raise InvalidRequest("options.min_modalities", f"must be 1 to {len(MODALITIES)}, not {config.min_modalities}")
    for item in config.fusion_temperatures:
        modality, sep, value = item.partition("=")
        try:
            ok = sep and modality in MODALITIES and 0 < float(value) < float("inf")
        except ValueError:
            ok = False
        if not ok:
            raise InvalidRequest("fusion_temperatures", f"items are modality=T with T > 0 finite, not {item[:40]!r}")
    return config


def unkeepable(config: LabelerConfig, models: Mapping[str, object]) -> InvalidRequest | None:
    """Why no label of a job under `config` can be kept, given each modality's model (a str where
    there is none: why), or None. A job like that would end with an empty dataset."""
    has = [m for m in config.modalities if not isinstance(models.get(m), str)]
    if config.strategy == "vote":
        lacking = [m for m in ("face", "audio") if isinstance(models.get(m), str)]
        if not lacking:
            return None
        field, need = "options.strategy", "vote keeps a face vote only where the audio agrees"
    else:
        if len(has) >= config.min_modalities:
            return None
        lacking = [m for m in config.modalities if m not in has]
        field = "options.min_modalities"
        need = f"min_modalities {config.min_modalities}, but of modalities {', '.join(config.modalities)} "
        need += f"only {', '.join(has) or 'none'} {'has' if len(has) == 1 else 'have'} a model"
    why = "; ".join(f"{m}: {models.get(m)}" for m in lacking)
    return InvalidRequest(
        field,
        f"no label would be kept: {need} ({why}). Set the missing model (models.speech_emotion_path, "
        "EMO_MODELS__SPEECH_EMOTION_PATH, for audio), or fuse what there is (labeler.modalities, "
        "labeler.min_modalities)",
    )
