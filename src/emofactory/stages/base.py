"""What the stages that run models share: one model backend per process (in-process, Triton, or routed
per model, from the `models` settings), or the one a test or the in-process runner hands in."""

from __future__ import annotations

from emofactory.core.backend import ModelBackend
from emofactory.core.config import ModelsConfig, load_section
from emofactory.core.stage import Stage, StageContext
from emofactory.models.backends import backend_for
from emofactory.models.check import load_models
from emofactory.models.info import model_name


class ModelStage(Stage):
    def __init__(self, ctx: StageContext, defaults=None, backend: ModelBackend | None = None):
        super().__init__(ctx, defaults)
        self.models = load_section(ModelsConfig, "models")
        self.backend = backend or backend_for(self.models)

    def models_used(self) -> tuple[str, ...]:
        """The backend's models this stage runs under its defaults."""
        return ()

    def prepare(self) -> None:
        load_models(self.backend, self.models, self.models_used())

    def model_name(self, modality: str) -> str:
        """What scores say they came from: the face, audio or text model the settings name."""
        return model_name(self.models, modality)
