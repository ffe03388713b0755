"""The live state of a submission, as its page's script receives it (a server-sent event, or the polling
answer): its status, its place in the queue, the checks done so far by question, then its score."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from grader.service.grading.live import live_status
from grader.service.submissions.models import Submission


def live_payload(session: Session, submission: Submission, *, as_staff: bool) -> dict[str, Any]:
    return live_status(session, submission, as_staff=as_staff).to_dict()
