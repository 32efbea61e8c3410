"""Errors are exceptions. A worker naks transient ones with a delay and dead-letters permanent ones;
a gRPC servicer maps them to status codes."""


class StageError(Exception):
    """A stage could not produce its output."""


class TransientError(StageError):
    """Worth retrying: a server was down, a network call timed out."""


class PermanentError(StageError):
    """Retrying cannot help: the input is corrupt, missing or not allowed."""


class InvalidRequest(PermanentError):
    """A request field is missing or malformed; `field` names it."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field


class SettingError(PermanentError):
    """A setting names something that cannot be used (weights that do not load); `setting` names it.
    A service with one stays NOT_SERVING and says why; a command refuses to start."""

    def __init__(self, setting: str, problem: str):
        super().__init__(f"{setting}: {problem.removeprefix(f'{setting}: ')}")
        self.setting = setting


class NotFound(PermanentError):
    """The named job, clip or object does not exist."""
