from __future__ import annotations

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
    # Modalities logit_fusion combines (seed 003: text and audio; face presence is a filter).
    modalities: tuple[str, ...] = ("text", "audio")
    # λ of the KL penalty.
    fusion_lambda: float = 0.5
    # θf: segments with less face presence are rejected.
    min_face_ratio: float = 0.9
    # θt, θa: a non-neutral label needs σ(l_neutral) of text and audio below these.
    max_text_neutral: float = 0.05
    max_audio_neutral: float = 0.05
    # Neutral labels kept per non-neutral label kept, per video (seed 003: about 15 %).
    neutral_share: float = 0.15
    # Keep a label only where the fused modalities' top classes agree.
    require_agreement: bool = True
    # Keep a label only where at least this many modalities gave scores: one modality is no agreement.
    min_modalities: int = 2
    # The speech-emotion model hears each segment widened by this much audio either side: the SER
    # CNN was trained on whole RAVDESS files, silence around the sentence included. Measured on the
    # 58 labelled speech files of shared/assets at the source rate: 0 s 18 right, 0.25 s 25, 0.5 s 32.
    audio_context_s: float = 0.5
    # Per-modality temperatures of logit_fusion, as modality=T items ("face=1.5"); unnamed: 1. Fitted
    # by `emofactory calibrate` for the default text model and the SER CNN on the 64 speech files of
    # shared/assets (fused NLL 3.77 -> 1.42, 1.50 on held-out speakers; ECE 0.45 -> 0.15; fused
    # accuracy 0.47 -> 0.52; confidences 0.24-0.92 instead of piling at 1). Refit for other models.
    fusion_temperatures: tuple[str, ...] = ("text=12", "audio=6")

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
    for name in ("min_face_ratio", "max_text_neutral", "max_audio_neutral"):
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
