"""The instructor's dashboard of an assignment, on both databases: what staff see (the roster, the score
histogram and its table, each check's pass rate, the diagnosed mistakes with links, the queue), who is
refused, its actions (regrade all, an extension, the CSV exports) with their CSRF checks, and a number of
queries that does not grow with the number of students."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from grader.service.accounts.models import User
from grader.service.assignments.models import Assignment, Extension
from grader.service.courses.models import Membership, Role
from grader.service.errors import InvalidInput
from grader.service.grading.models import GradingJob, JobStatus
from grader.service.submissions.models import Source, Submission
from grader.service.web.dashboard_data import SUMMARIES, histogram, nearest_rank, nice_step
from grader.service.web.pages.dashboard import due_moment
from tests.grader.service.api.conftest import World, api_settings, client, world  # noqa: F401
from tests.grader.service.factories import graded_run
from tests.grader.service.web.browsing import csrf_of, give_password, log_in

GOLDEN = Path(__file__).resolve().parents[3] / "fixtures" / "golden" / "reports.json.gz"
# Real reports of the grader: three known mistakes and a correct submission, handed out in turn.
KINDS = (
    "fixture/bn_eps_outside_sqrt",
    "fixture/softmax_not_stable",
    "fixture/adam_no_bias_correction",
    "correct/correct_course/seed7",
)


@pytest.fixture(scope="module")
def golden() -> dict[str, dict[str, Any]]:
    with gzip.open(GOLDEN) as file:
        reports: dict[str, dict[str, Any]] = json.load(file)
    return {kind: reports[kind] for kind in KINDS}


@pytest.fixture
def site(world: World) -> Iterator[World]:  # noqa: F811
    with world.app.state.sessions.begin() as session:
        for role in ("student", "ta", "instructor", "other_instructor"):
            give_password(session, world.emails[role])
    world.client.cookies.clear()
    yield world


def add_students(
    session: Session, site: World, reports: dict[str, dict[str, Any]], count: int, *, first: int = 0
) -> dict[str, tuple[str, str]]:
    """`count` new students of the course, each with a submission graded with the next golden report:
    {email: (kind, submission id)}."""
    assignment = session.get(Assignment, site.assignment)
    assert assignment is not None
    made = {}
    for number in range(first, first + count):
        email = f"s{number:03d}@example.org"
        user = User(email=email, email_key=email, name=f"Student {number:03d}")
        session.add(user)
        session.flush()
        session.add(Membership(course_id=assignment.course_id, user_id=user.id, role=Role.student))
        kind = KINDS[number % len(KINDS)]
        made[email] = (kind, graded(session, assignment, user, reports[kind], seconds=1.0 + number))
    return made


def graded(
    session: Session, assignment: Assignment, student: User, report: dict[str, Any], *, seconds: float
) -> str:
    """A submission of the student with its job done and a graded run that stored `report`."""
    submission = Submission(
        assignment_id=assignment.id,
        student_id=student.id,
        submitted_by_id=student.id,
        caller=f"user:{student.id}",
        source=Source.api,
    )
    session.add(submission)
    session.flush()
    graded_run(session, submission.id, report, finished_at=datetime.now(UTC), seconds=seconds)
    return submission.id


def dashboard_path(site: World) -> str:
    return f"/assignments/{site.assignment}/dashboard"


def text_of(html: str) -> str:
    """The page's words, tags and surplus whitespace left out."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_staff_see_the_roster_histogram_pass_rates_mistakes_and_queue(
    site: World, golden: dict[str, dict[str, Any]]
) -> None:
    with site.app.state.sessions.begin() as session:
        made = add_students(session, site, golden, 8)
        waiting = session.scalars(
            select(Submission).where(Submission.id == made["s000@example.org"][1])
        ).one()
        session.add(GradingJob(submission_id=waiting.id, status=JobStatus.queued))
        session.add(
            GradingJob(submission_id=made["s001@example.org"][1], status=JobStatus.failed, attempts=3)
        )
    log_in(site.client, site.emails["instructor"])
    page = site.client.get(dashboard_path(site))
    assert page.status_code == 200
    html, words = page.text, text_of(page.text)
    # The roster: the world's two students and the eight new ones, with their scores and attempts.
    for number in range(8):
        assert f"Student {number:03d}" in html
    assert "Owner" in html and "no submission" in words  # `student` never handed in
    assert "84.67 / 86" in words and "86 / 86" in words
    assert 'aria-sort="ascending">Student</th>' in html and 'id="roster-table"' in html
    assert 'for="roster-filter">Filter students' in html
    # The histogram: an SVG image with its title and description, and its numbers in a table.
    svg = html.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert 'role="img"' in svg and 'aria-labelledby="histogram-title histogram-desc"' in svg
    assert '<title id="histogram-title">' in svg and '<desc id="histogram-desc">' in svg
    assert "Final scores of 9 students, out of 86 points." in svg  # the owner's 3 of 5 counts too
    assert svg.count('class="bar"') == 2  # 0-10 (the owner's 3) and 80-86 (the eight)
    table = html.split("The histogram's numbers", 1)[1].split("</table>", 1)[0]
    assert '80 to 86</th><td class="num">8</td>' in table
    assert '0 to under 10</th><td class="num">1</td>' in table
    assert 'No final score</th><td class="num">1</td>' in table
    # Each check's pass rate over the nine counting reports.
    checks = text_of(html.split('id="checks"', 1)[1].split("</section>", 1)[0])
    assert "layers.softmax_loss.large_scores" in checks
    row = checks.split("layers.softmax_loss.large_scores", 1)[1]
    assert (
        "6 of 8" in row.split("%", 1)[0]
    )  # two of the eight made the mistake; the owner's has no such check
    assert "layers.affine_forward.output" in checks and "1 of 1" in checks
    # The mistakes, the most frequent first, each with its students' submissions.
    mistakes = html.split('id="mistakes"', 1)[1].split("</section>", 1)[0]
    for code in ("bn_eps_outside_sqrt", "softmax_not_stable", "adam_no_bias_correction"):
        assert f"<code>{code}</code>" in mistakes
    assert "eps is added outside the square root" in mistakes
    eps = mistakes.split("<code>bn_eps_outside_sqrt</code>", 1)[1].split("</tr>", 1)[0]
    assert 'data-sort="2"' in eps  # students 000 and 004
    for email in ("s000@example.org", "s004@example.org"):
        assert f'href="/submissions/{made[email][1]}"' in eps
    assert made["s001@example.org"][1] not in eps
    # The queue: one waiting, one failed, and the grading times of the nine graded runs.
    queue = text_of(html.split('id="queue"', 1)[1].split("</section>", 1)[0])
    assert "1 waiting" in queue and "0 running" in queue and "1 failed" in queue
    assert "Graded runs p50 p90 p99 9" in queue
    assert "Failed jobs" in queue and "Student 001" in queue
    # The actions.
    assert (
        f'action="/assignments/{site.assignment}/dashboard/regrade"' in html
        and ">Regrade all</button>" in html
    )
    assert f'action="/assignments/{site.assignment}/grades.csv"' in html and "Export grades (CSV)" in html
    assert 'for="extension-due"' in html and 'type="datetime-local"' in html
    assert '<script src="/static/dashboard.js" defer></script>' in html
    assert site.client.get("/static/dashboard.js").status_code == 200
    assert "style=" not in html and "<script>" not in html  # the CSP allows neither


def test_the_filter_hides_the_other_students_without_the_script(
    site: World, golden: dict[str, dict[str, Any]]
) -> None:
    with site.app.state.sessions.begin() as session:
        add_students(session, site, golden, 3)
    log_in(site.client, site.emails["ta"])  # TAs are staff too
    page = site.client.get(dashboard_path(site), params={"q": "student 001"})
    assert page.status_code == 200
    rows = re.findall(r'<tr id="student-[^"]+" data-search="[^"]*"( hidden)?>', page.text)
    assert len(rows) == 5 and rows.count(" hidden") == 4
    assert "Showing 1 of 5 students." in page.text


def test_students_and_strangers_are_refused(site: World) -> None:
    log_in(site.client, site.emails["student"])
    refused = site.client.get(dashboard_path(site))
    assert refused.status_code == 403 and "only the course&#39;s instructors and TAs" in refused.text
    csv = site.client.get(f"/assignments/{site.assignment}/grades.csv", params={"format": "canvas"})
    assert csv.status_code == 403
    log_in(site.client, site.emails["other_instructor"])
    assert site.client.get(dashboard_path(site)).status_code == 404  # another course's: nothing there
    site.client.cookies.clear()
    anonymous = site.client.get(dashboard_path(site), follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")


def ask_for_regrade(site: World) -> Any:
    """`Regrade all`, pressed on the dashboard by the course's instructor."""
    log_in(site.client, site.emails["instructor"])
    page = site.client.get(dashboard_path(site))
    return site.client.post(
        f"{dashboard_path(site)}/regrade", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
    )


def test_regrade_all_queues_a_regrade_job_per_counting_submission(
    site: World, golden: dict[str, dict[str, Any]]
) -> None:
    with site.app.state.sessions.begin() as session:
        add_students(session, site, golden, 4)
    sent = ask_for_regrade(site)
    assert sent.status_code == 303
    location = sent.headers["location"]
    assert location.startswith(f"{dashboard_path(site)}?regrade=") and location.endswith("#queue")
    with site.session() as session:
        jobs = list(session.scalars(select(GradingJob).where(GradingJob.regrade_id.is_not(None))))
    assert len(jobs) == 5 and {job.status for job in jobs} == {JobStatus.queued}  # 4 new + the owner's
    after = site.client.get(location)
    assert "Regrade all: 5 submissions to grade again: 5 waiting, 0 running, 0 done, 0 failed." in after.text
    assert "5 waiting" in text_of(after.text.split('id="queue"', 1)[1])
    assert 'id="regrade-progress" data-progress-url=' in after.text and "data-running>" in after.text


def test_the_regrade_progress_the_page_polls_counts_the_jobs_as_they_end(
    site: World, golden: dict[str, dict[str, Any]]
) -> None:
    with site.app.state.sessions.begin() as session:
        add_students(session, site, golden, 2)
    log_in(site.client, site.emails["instructor"])
    progress_path = f"{dashboard_path(site)}/regrade"
    never = site.client.get(progress_path)
    assert never.status_code == 404 and never.json() == {"detail": "this assignment was never regraded"}
    assert ask_for_regrade(site).status_code == 303
    counts = site.client.get(progress_path).json()
    assert {k: counts[k] for k in ("jobs", "queued", "running", "done", "failed", "finished")} == {
        "jobs": 3,
        "queued": 3,
        "running": 0,
        "done": 0,
        "failed": 0,
        "finished": False,
    }
    with site.app.state.sessions.begin() as session:  # the workers' part, as the queue leaves the rows
        jobs = list(session.scalars(select(GradingJob).where(GradingJob.regrade_id == counts["id"])))
        jobs[0].status, jobs[1].status, jobs[2].status = JobStatus.done, JobStatus.failed, JobStatus.running
    counts = site.client.get(progress_path).json()
    assert (counts["queued"], counts["running"], counts["done"], counts["failed"]) == (0, 1, 1, 1)
    assert counts["finished"] is False
    with site.app.state.sessions.begin() as session:
        job = session.get(GradingJob, jobs[2].id)
        assert job is not None
        job.status = JobStatus.done
    assert site.client.get(progress_path).json()["finished"] is True
    finished = site.client.get(dashboard_path(site))
    assert 'id="regrade-progress"' in finished.text and "data-running" not in finished.text

    log_in(site.client, site.emails["student"])  # the dashboard's answers, not the counts
    assert site.client.get(progress_path).status_code == 403
    log_in(site.client, site.emails["other_instructor"])
    assert site.client.get(progress_path).status_code == 404


def test_a_post_without_the_csrf_token_is_refused(site: World) -> None:
    log_in(site.client, site.emails["instructor"])
    regrade = site.client.post(f"{dashboard_path(site)}/regrade", data={})
    assert regrade.status_code == 403 and "did not come from this site" in regrade.text
    extension = site.client.post(
        f"{dashboard_path(site)}/extensions",
        data={"email": site.emails["owner"], "due_at": "2030-01-01T00:00", "csrf_token": "forged.value"},
    )
    assert extension.status_code == 403
    with site.session() as session:
        assert session.scalar(select(GradingJob).where(GradingJob.regrade_id.is_not(None))) is None
        assert session.scalar(select(Extension)) is None


def test_an_extension_changes_the_students_due_date(site: World) -> None:
    log_in(site.client, site.emails["instructor"])
    page = site.client.get(dashboard_path(site))
    token = csrf_of(page.text)
    sent = site.client.post(
        f"{dashboard_path(site)}/extensions",
        # 03:04 in a zone one hour east of UTC: 02:04 UTC.
        data={
            "csrf_token": token,
            "email": site.emails["owner"],
            "due_at": "2030-01-02T03:04",
            "tz_offset": "60",
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303
    with site.session() as session:
        extension = session.scalars(select(Extension)).one()
        owner = session.scalars(select(User).where(User.email == site.emails["owner"])).one()
    assert extension.user_id == owner.id
    assert extension.due_at == datetime(2030, 1, 2, 2, 4, tzinfo=UTC)
    assert sent.headers["location"] == f"{dashboard_path(site)}?extended={owner.id}#student-{owner.id}"
    after = site.client.get(sent.headers["location"])
    assert "Owner is now due 2030-01-02 02:04 UTC." in after.text
    row = after.text.split(f'id="student-{owner.id}"', 1)[1].split("</tr>", 1)[0]
    assert 'datetime="2030-01-02T02:04:00+00:00"' in row and "extension</span>" in row


def test_a_wrong_due_date_is_refused_with_its_reason_at_the_form(site: World) -> None:
    log_in(site.client, site.emails["instructor"])
    token = csrf_of(site.client.get(dashboard_path(site)).text)
    wrong = site.client.post(
        f"{dashboard_path(site)}/extensions",
        data={"csrf_token": token, "email": site.emails["owner"], "due_at": "next friday"},
    )
    assert wrong.status_code == 422
    assert "The extension was not granted:" in wrong.text and "is not a date and time" in wrong.text
    assert 'aria-invalid="true"' in wrong.text and 'value="next friday"' in wrong.text
    assert "New due date for Owner" in wrong.text  # the form keeps its student
    stranger = site.client.post(
        f"{dashboard_path(site)}/extensions",
        data={"csrf_token": token, "email": site.emails["ta"], "due_at": "2030-01-01T00:00"},
    )
    assert stranger.status_code == 404 and "is not a student of this course" in stranger.text
    with site.session() as session:
        assert session.scalar(select(Extension)) is None


def test_the_csv_export_with_the_browsers_session(site: World) -> None:
    log_in(site.client, site.emails["instructor"])
    canvas = site.client.get(f"/assignments/{site.assignment}/grades.csv", params={"format": "canvas"})
    assert canvas.status_code == 200
    assert canvas.headers["content-type"].startswith("text/csv")
    assert canvas.headers["content-disposition"] == 'attachment; filename="a2-grades-canvas.csv"'
    lines = canvas.text.split("\r\n")
    assert lines[0] == "Student,ID,SIS User ID,SIS Login ID,Section,Assignment 2"
    assert lines[1].startswith("Points Possible")
    plain = site.client.get(f"/assignments/{site.assignment}/grades.csv", params={"format": "plain"})
    assert plain.text.startswith("email,name,student_number")
    assert site.client.get(f"/assignments/{site.assignment}/grades.csv?format=excel").status_code == 422


@contextmanager
def counted(engine: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_the_number_of_queries_does_not_grow_with_the_students(
    site: World, golden: dict[str, dict[str, Any]]
) -> None:
    engine = site.app.state.sessions.kw["bind"]
    log_in(site.client, site.emails["instructor"])
    with site.app.state.sessions.begin() as session:
        add_students(session, site, golden, 3)  # with the world's two: 5
    SUMMARIES.clear()  # every report read, on both renders: the worst case
    with counted(engine) as few:
        assert "Student 002" in site.client.get(dashboard_path(site)).text
    with site.app.state.sessions.begin() as session:
        made = add_students(session, site, golden, 45, first=3)
        for email in list(made)[:10]:  # extensions and a second attempt for some
            user = session.scalars(select(User).where(User.email == email)).one()
            session.add(
                Extension(
                    assignment_id=site.assignment, user_id=user.id, due_at=datetime(2099, 1, 1, tzinfo=UTC)
                )
            )
            assignment = session.get(Assignment, site.assignment)
            assert assignment is not None
            graded(session, assignment, user, golden[KINDS[3]], seconds=2.0)
    SUMMARIES.clear()
    with counted(engine) as many:
        page = site.client.get(dashboard_path(site))
    assert "Student 047" in page.text and "Showing 50 of 50 students." in page.text
    assert len(many) == len(few), "\n".join(many)
    assert len(few) <= 20
    with counted(engine) as again:  # the reports' summaries are kept: a run's report never changes
        same = site.client.get(dashboard_path(site))
    assert len(again) == len(many) - 1
    assert same.text.split('id="mistakes"', 1)[1] == page.text.split('id="mistakes"', 1)[1]


def test_due_moment_reads_local_time_with_its_offset_or_utc() -> None:
    assert due_moment("2030-05-01T23:59", "-420") == datetime(2030, 5, 2, 6, 59, tzinfo=UTC)  # UTC-7
    assert due_moment("2030-05-01T23:59", "") == datetime(2030, 5, 1, 23, 59, tzinfo=UTC)
    assert due_moment("2030-05-01T23:59:30", "330") == datetime(2030, 5, 1, 18, 29, 30, tzinfo=UTC)
    assert due_moment("2030-05-01T23:59+02:00", "60") == datetime(2030, 5, 1, 21, 59, tzinfo=UTC)
    for typed, offset in (("", ""), ("soon", ""), ("2030-05-01T23:59", "east"), ("2030-05-01T23:59", "2000")):
        with pytest.raises(InvalidInput):
            due_moment(typed, offset)
    with pytest.raises(InvalidInput):
        due_moment("9999-12-31T23:59", "-60")


def test_histogram_bins_and_percentiles() -> None:
    assert nice_step(86) == 10 and nice_step(5) == 0.5 and nice_step(100) == 10 and nice_step(7) == 1
    chart = histogram([0.0, 9.99, 10.0, 86.0, None], 86.0)
    assert [b.count for b in chart.bins] == [2, 1, 0, 0, 0, 0, 0, 0, 1]
    assert chart.bins[-1].label == "80–86" and chart.graded == 4 and chart.ungraded == 1
    assert len(chart.bars) == 9 and all(bar.height >= 0 for bar in chart.bars)
    assert histogram([], 86.0).description == "No student has a final score yet."
    values = [float(n) for n in range(1, 501)]
    assert [nearest_rank(values, p) for p in (50, 90, 99)] == [250.0, 450.0, 495.0]
