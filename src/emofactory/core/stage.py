"""A stage: one step of the pipeline with a typed config and one entry point. It does not know how work
reaches it: one JetStream adapter (`core.worker`), one gRPC adapter (`core.rpc`) and the in-process
runner (`emofactory.run_local`) drive every stage the same way.

    run(request, config) -> response     the typed entry point; request and response are the stage's
                                         gRPC messages (DetectSegmentsRequest -> DetectSegmentsResponse)
    on_event(subject, event, config)     an event of the pipeline -> an Output: the events for the next
                                         stages and what the job's status records (by default:
                                         request_of(event) -> run -> output_of(event, response))
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from google.protobuf.message import Message

from emofactory.core.config import load_section, options_over
from emofactory.core.copies import LocalCopies
from emofactory.core.errors import InvalidRequest, PermanentError, SettingError
from emofactory.core.store import FileStore
from emofactory.v1 import common_pb2


@dataclass
class StageContext:
    """What a stage may touch: the object store (S3, or a folder in-process), a scratch folder, and
    local files of the objects it reads (`copies.local_copy(ref)`): copies of the ones it read last
    from S3; in-process, the folder store's own files."""

    store: Any
    work_dir: str | None = None
    copies: Any = field(init=False)

    def __post_init__(self):
        if isinstance(self.store, FileStore):
            self.copies = self.store
            return
        folder = Path(self.work_dir or tempfile.gettempdir()) / f"copies-{os.getpid()}-{id(self):x}"
        self.copies = LocalCopies(self.store, folder)


@dataclass(frozen=True)
class Rpc:
    """The stage's typed gRPC method: `package.Service/Method`, served by `run`."""

    module: Any  # the generated *_pb2 module
    service: str
    method: str

    @property
    def descriptor(self):
        return self.module.DESCRIPTOR.services_by_name[self.service].methods_by_name[self.method]

    @property
    def full_service(self) -> str:
        return self.module.DESCRIPTOR.services_by_name[self.service].full_name


@dataclass
class Output:
    """What one event made: events for the next stages (subject, payload) and the video's status."""

    events: list[tuple[str, Message]] = field(default_factory=list)
    state: int = common_pb2.STAGE_STATE_DONE
    reason: str = ""
    items: int = 0
    flagged: int = 0
    # Segments not kept, by reason code (the labeler).
    not_kept: dict[str, int] = field(default_factory=dict)
    # Ingest only: the videos a job's sources stand for (video_id, source, title), and per-source errors;
    # `resolved` marks the job's sources as all resolved (its status then settles with `errors`).
    videos: list[tuple[str, str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    resolved: bool = False

    @property
    def records_video(self) -> bool:
        return not self.resolved


class Stage:
    name: ClassVar[str]
    # The events it consumes, subject -> payload type (its durable consumer's filter), and the
    # subjects it may produce.
    consumes: ClassVar[Mapping[str, type[Message]]]
    produces: ClassVar[tuple[str, ...]] = ()
    config_type: ClassVar[type]
    rpc: ClassVar[Rpc | None] = None
    # The check of per-job / per-request options over the defaults (each stage's `checked_options`).
    check: ClassVar[Callable[[Any, Message | None], Any]] = staticmethod(options_over)

    def __init__(self, ctx: StageContext, defaults: Any = None):
        self.ctx = ctx
        self.defaults = defaults if defaults is not None else load_section(self.config_type, self.name)

    # -- config ---------------------------------------------------------------------------
    def config_for(self, job: common_pb2.JobContext):
        """The job's options for this stage (JobConfig.<name>) over the process's defaults."""
        return self.job_config(job.config, self.defaults)

    @classmethod
    def job_config(cls, options: common_pb2.JobConfig, defaults: Any = None):
        """This stage's config of a job: its options (JobConfig.<name>) checked over `defaults`, else
        over this process's settings (how SubmitJob, the CLI and the evaluation read it)."""
        defaults = defaults if defaults is not None else load_section(cls.config_type, cls.name)
        given = options.HasField(cls.name) if cls.name in options.DESCRIPTOR.fields_by_name else False
        return cls.check(defaults, getattr(options, cls.name) if given else None)

    @classmethod
    def unkeepable(cls, config) -> InvalidRequest | None:
        """Why a job under `config` (its options over this process's defaults) would come out of this
        stage with nothing kept, or None; SubmitJob refuses such a job, or warns where allowed."""
        return None

    def start(self) -> None:
        """Before any work: this process's settings pass the check a job's options get (a bad value
        stops the stage here, named as a setting, and not every job that reaches it), then `prepare`."""
        try:
            self.check(self.defaults, None)
        except InvalidRequest as exc:
            setting = f"{self.name}.{exc.field.removeprefix('options.')}"
            raise SettingError(setting, str(exc).removeprefix(f"{exc.field}: ")) from exc
        self.prepare()

    def prepare(self) -> None:
        """Before any work (a service's start, the in-process runner): loads what the stage will need,
        so a wrong setting stops it there, named, and not on its first message."""

    def register_services(self, server, rt) -> list[str]:
        """gRPC services of the stage beside its `rpc` (ingest's job API, the catalog's queries)."""
        return []

    # -- the entry points ---------------------------------------------------------------------
    async def run(self, request: Message, config) -> Message:
        raise PermanentError(f"the {self.name} stage has no request entry point")

    def validate(self, request: Message) -> None:
        """Refuses a request from outside (gRPC) that the stage cannot run, naming the field."""

    def request_of(self, event: Message) -> Message:
        raise PermanentError(f"the {self.name} stage does not take {type(event).__name__}")

    def output_of(self, event: Message, response: Message) -> Output:
        raise PermanentError(f"the {self.name} stage makes no event of {type(response).__name__}")

    async def on_event(self, subject: str, event: Message, config) -> Output | None:
        """None: nothing to do yet (a join waiting for its other half)."""
        return self.output_of(event, await self.run(self.request_of(event), config))

    def request_options(self, request: Message) -> Message | None:
        return (
            request.options if "options" in request.DESCRIPTOR.fields_by_name and request.HasField("options") else None
        )
