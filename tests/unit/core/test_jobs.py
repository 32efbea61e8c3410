"""A job's state from its videos' stage statuses, said plainly; job ids that fit the status keys."""

from __future__ import annotations

import pytest

from emofactory.core.errors import InvalidRequest
from emofactory.core.jobs import SETTLED, check_job_id, job_state
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
