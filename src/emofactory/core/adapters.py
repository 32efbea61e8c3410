"""The two adapters that bring work to any stage over the network:

- `event_handler(stage, rt)`: the JetStream side. Each event the stage's consumer delivers runs
  `stage.on_event` with the job's options; its events are published with deterministic
  Nats-Msg-Ids, then the video's status is recorded. The pull loop (`bus.StageWorker`) acks only
  after this returned.
- `register_rpc(server, stage)`: the gRPC side. The stage's typed method (`stage.rpc`, e.g.
  VadService/DetectSegments) validates the request, applies its options and calls `stage.run`.
  A request reads only objects of the video it names (`own_video`), so no caller can feed one
  video's media into another video's keys.
"""

from __future__ import annotations

import grpc

from emofactory.core.bus import Handler, publish
from emofactory.core.errors import InvalidRequest
from emofactory.core.events import chunk_of, context_of, message_id, video_id_of
from emofactory.core.service import Runtime, abort_on_error
from emofactory.core.stage import Output, Stage
from emofactory.v1 import common_pb2


def event_name(subject: str) -> str:
    """emo.vad.segmented -> vad.segmented (the Nats-Msg-Id's last part)."""
    return subject.removeprefix("emo.")


async def add_videos(jobs, event, out: Output) -> None:
    """The videos a job's sources stand for, known to its status before their events flow."""
    for video_id, source, title in out.videos:
        await jobs.add_video(context_of(event).job_id, video_id, source, title)


async def record_output(jobs, stage: Stage, event, out: Output) -> None:
    """The job's status after an output: resolved with its errors, or the video's stage recorded.
    `jobs` is the JetStream JobStore, or the in-process runner's status in the same shape."""
    job_id = context_of(event).job_id
    if out.resolved:

        def settle(job) -> None:
            job.errors[:] = out.errors
            job.resolved = True

        await jobs.update(job_id, settle)
    elif out.records_video:
        chunk, chunks = chunk_of(event)
        status = common_pb2.StageStatus(
            stage=stage.name,
            state=out.state,
            reason=out.reason,
            items=out.items,
            attempts=1,
            flagged=out.flagged,
            chunks=chunks,
            not_kept=out.not_kept,
        )
        await jobs.record(job_id, video_id_of(event), status, chunk)


async def apply_output(rt: Runtime, stage: Stage, event, out: Output) -> None:
    job_id = context_of(event).job_id
    await add_videos(rt.jobs, event, out)
    for subject, produced in out.events:
        ids = message_id(job_id, video_id_of(produced), event_name(subject), *chunk_of(produced))
        await publish(rt.js, subject, produced, ids)
    await record_output(rt.jobs, stage, event, out)


def event_handler(stage: Stage, rt: Runtime) -> Handler:
    async def handle(subject: str, event) -> None:
        out = await stage.on_event(subject, event, stage.config_for(context_of(event)))
        if out is not None:
            await apply_output(rt, stage, event, out)

    return handle


def own_video(request) -> None:
    """Each object a request refers to lies under the prefix of the video it names: a stage writes
    under that prefix, so a caller that could name another video's inputs could overwrite its outputs."""
    video_id = getattr(request, "video_id", "")
    for field, value in request.ListFields():
        if isinstance(value, common_pb2.ObjectRef) and not value.key.startswith(f"{video_id}/"):
            raise InvalidRequest(f"{field.name}.key", f"must lie under the request's video, {video_id[:40]}/")


def register_rpc(server: grpc.aio.Server, stage: Stage) -> list[str]:
    """Serves the stage's typed method; returns the full service name (for health and reflection)."""
    rpc = stage.rpc
    method = rpc.descriptor
    request_type = getattr(rpc.module, method.input_type.name)
    response_type = getattr(rpc.module, method.output_type.name)

    async def call(request, context):
        async with abort_on_error(context):
            stage.validate(request)
            own_video(request)
            return await stage.run(request, type(stage).check(stage.defaults, stage.request_options(request)))

    handler = grpc.unary_unary_rpc_method_handler(
        call, request_deserializer=request_type.FromString, response_serializer=response_type.SerializeToString
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(rpc.full_service, {rpc.method: handler}),))
    return [rpc.full_service]
