from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

if TYPE_CHECKING:
    from grader.service.grading.regrades import Progress


class RegradeQueued(BaseModel):
    """A submission's regrade job: its status URL shows `queued`, then `running`, then the new grade."""

    submission_id: str
    job_id: str
    status: Literal["queued", "running"]
    status_url: str


class RegradeProgress(BaseModel):
    id: str
    assignment_id: str
    every_submission: bool  # False: every student's counting submission
    jobs: int  # the submissions it regrades (those already waiting or running are not queued twice)
    queued: int
    running: int
    done: int
    failed: int  # three infrastructure failures: the earlier grade stands
    finished: bool
    created_at: datetime

    @classmethod
    def of(cls, found: Progress) -> RegradeProgress:
        regrade = found.regrade
        return cls(
            id=regrade.id,
            assignment_id=regrade.assignment_id,
            every_submission=regrade.every_submission,
            jobs=regrade.jobs,
            queued=found.queued,
            running=found.running,
            done=found.done,
            failed=found.failed,
            finished=found.finished,
            created_at=regrade.created_at,
        )
