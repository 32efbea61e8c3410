"""A job's state from its videos' stage statuses, said plainly; job ids that fit the status keys."""

from __future__ import annotations

import pytest

from emofactory.core.errors import InvalidRequest
from emofactory.core.jobs import SETTLED, check_job_id, job_state, merge_chunks, settle, stage_statuses, summarize
from emofactory.pipeline import NAMES
from emofactory.v1 import common_pb2 as pb

S = pb.StageState


def video(*states: int) -> pb.VideoStatus:
    """A video whose first stages ended in `states`, in pipeline order."""
    return pb.VideoStatus(video_id="v", stages=[pb.StageStatus(stage=n, state=s) for n, s in zip(NAMES, states)])


DONE = video(*[S.STAGE_STATE_DONE] * len(NAMES))
FILTERED_OUT = video(S.STAGE_STATE_SKIPPED)  # ingest skipped it: too short, another language
BROKEN = video(S.STAGE_STATE_DONE, S.STAGE_STATE_FAILED)


@pytest.mark.parametrize(
    "videos, errors, state",
    [
        ([DONE, DONE], [], pb.JOB_STATE_SUCCEEDED),
        ([DONE, FILTERED_OUT], [], pb.JOB_STATE_PARTIAL),
        ([FILTERED_OUT, FILTERED_OUT], [], pb.JOB_STATE_FILTERED),  # the user's own filters: not a failure
        ([FILTERED_OUT, BROKEN], [], pb.JOB_STATE_FAILED),
        ([FILTERED_OUT], ["sources[1]: no such host"], pb.JOB_STATE_FAILED),
        ([], ["sources[0]: no such host"], pb.JOB_STATE_FAILED),
        ([video(S.STAGE_STATE_DONE)], [], pb.JOB_STATE_RUNNING),
    ],
)
def test_the_state_says_what_ended_the_job(videos, errors, state):
    job = pb.Job(job_id="j", resolved=True, videos=videos, errors=errors)
    assert job_state(job, NAMES) == state
    assert (state in SETTLED) == (state != pb.JOB_STATE_RUNNING)


@pytest.mark.hostile
@pytest.mark.parametrize("job_id", ["a.b", "", "x" * 65, "../x", "a b", "-a"])
def test_job_ids_are_one_status_key_token(job_id):
    with pytest.raises(InvalidRequest, match="job id"):
        check_job_id(job_id)


@pytest.mark.hostile
def test_good_job_ids_pass():
    assert check_job_id("run-2026_12") == "run-2026_12" and check_job_id("a" * 64)


def chunked(stage: str, *states: int, chunks: int = 3) -> list[pb.StageStatus]:
    """One stage's records of a video's chunks, one per state given (the others not recorded yet)."""
    return [pb.StageStatus(stage=stage, state=s, items=2, flagged=1, chunks=chunks, reason=f"r{s}") for s in states]


def chunked_video(**records: list[pb.StageStatus]) -> pb.VideoStatus:
    whole = {n: [pb.StageStatus(stage=n, state=S.STAGE_STATE_DONE)] for n in NAMES[:3]}  # ingest, audio, vad
    return pb.VideoStatus(video_id="v", stages=stage_statuses(whole | records, NAMES))


D, F = S.STAGE_STATE_DONE, S.STAGE_STATE_FAILED


def test_a_stages_chunks_merge_into_one_status():
    merged = merge_chunks(chunked("vision", D, D))
    assert (merged.state, merged.chunks, merged.chunks_done, merged.items, merged.flagged) == (0, 3, 2, 4, 2)
    assert merge_chunks(chunked("vision", D, D, D)).state == D
    failed = merge_chunks(chunked("vision", D, F, D))
    assert (failed.state, failed.chunks_failed, failed.reason) == (F, 1, f"r{F}")
    whole = pb.StageStatus(stage="vad", state=D, items=7)
    assert merge_chunks([whole]) == whole  # a stage that ran on the whole video is its own record


def test_segments_not_kept_add_up_by_reason_over_chunks_and_videos():
    records = chunked("labeler", D, D, D)
    for record, counts in zip(records, ({"too_few_modalities": 3}, {}, {"too_few_modalities": 1, "audio_neutral": 2})):
        record.not_kept.update(counts)
    assert dict(merge_chunks(records).not_kept) == {"too_few_modalities": 4, "audio_neutral": 2}
    video = chunked_video(**{n: chunked(n, D, D, D) for n in NAMES[3:]} | {"labeler": records})
    job = settle(pb.Job(job_id="j", resolved=True, videos=[video, video]), NAMES)
    row = next(r for r in job.summary if r.stage == "labeler")
    assert dict(row.not_kept) == {"too_few_modalities": 8, "audio_neutral": 4}


@pytest.mark.parametrize(
    "records, state",
    [
        # every chunk through the catalog
        ({n: chunked(n, D, D, D) for n in NAMES[3:]}, pb.JOB_STATE_SUCCEEDED),
        # the catalog has two of three chunks: still running
        ({n: chunked(n, D, D, D) for n in NAMES[3:-1]} | {"catalog": chunked("catalog", D, D)}, pb.JOB_STATE_RUNNING),
        # one chunk failed in vision while another is still on its way: running, not settled early
        ({"vision": chunked("vision", D, F, D), "asr": chunked("asr", D, D, D), "labeler": chunked("labeler", D),
          "catalog": chunked("catalog", D)}, pb.JOB_STATE_RUNNING),
        # one chunk failed in vision, the other two through the catalog: settled, failed (its only video)
        ({"vision": chunked("vision", D, F, D), "asr": chunked("asr", D, D, D), "labeler": chunked("labeler", D, D),
          "catalog": chunked("catalog", D, D)}, pb.JOB_STATE_FAILED),
    ],
)  # fmt: skip
def test_a_chunked_video_settles_when_each_chunk_is_through_or_failed(records, state):
    job = pb.Job(job_id="j", resolved=True, videos=[chunked_video(**records)])
    assert job_state(job, NAMES) == state
    summary = {row.stage: row for row in summarize(job, NAMES)}
    assert summary["catalog"].pending == (state == pb.JOB_STATE_RUNNING)
