"""What an assignment's dashboard shows, read in a fixed number of queries whatever the number of
students: the roster's grades (grades/service.py grade_rows), the extensions, the reports of the
submissions that count (summarized once per run: see SummaryCache), the queue and the grading times.
Nothing here is stored in the database."""

from __future__ import annotations

import json
import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from grader.assignments import UnknownAssignment, get_assignment
from grader.service.accounts.models import User
from grader.service.assignments.models import Assignment, Extension
from grader.service.grades.service import GradeRow, catalog_max_score, grade_rows
from grader.service.grading.models import (
    PRIORITY_SUBMISSION,
    GradingJob,
    GradingRun,
    JobStatus,
    RunStatus,
)
from grader.service.grading.regrades import Progress, last_regrade
from grader.service.submissions.models import Submission
from grader.service.submissions.views import latest_graded_runs

HISTOGRAM_BINS = 10  # at most; the step is rounded to a number people read (1, 2, 2.5, 5 x 10^k)
FAILED_JOBS_SHOWN = 50
PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class RosterLine:
    grade: GradeRow
    due_at: datetime  # the student's own (an extension) or the assignment's
    extended: bool

    @property
    def search_text(self) -> str:
        """What the roster's filter matches: name, email, student number and section."""
        row = self.grade
        return " ".join(filter(None, (row.name, row.email, row.student_number, row.section))).lower()


@dataclass(frozen=True)
class Bin:
    low: float
    high: float
    count: int
    last: bool  # the last bin holds its upper end too (a full score)

    @property
    def label(self) -> str:
        return f"{_number(self.low)}–{_number(self.high)}"


@dataclass(frozen=True)
class Bar:
    """A bin's bar in the histogram's SVG coordinates."""

    bin: Bin
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Histogram:
    bins: list[Bin]
    graded: int  # students with a final score, in the chart
    ungraded: int  # students without one, not in it
    max_score: float

    width: int = 640
    height: int = 240
    left: int = 44
    right: int = 12
    top: int = 20
    bottom: int = 44

    @property
    def tallest(self) -> int:
        return max((b.count for b in self.bins), default=0)

    @property
    def plot_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> float:
        return self.height - self.top - self.bottom

    @property
    def baseline(self) -> float:
        return self.top + self.plot_height

    @property
    def bars(self) -> list[Bar]:
        if not self.bins:
            return []
        slot = self.plot_width / len(self.bins)
        scale = self.plot_height / self.tallest if self.tallest else 0.0
        bars = []
        for index, b in enumerate(self.bins):
            height = max(1.0, round(b.count * scale, 1)) if b.count else 0.0  # one student shows
            x = round(self.left + index * slot + 1, 1)
            bars.append(Bar(b, x, round(self.baseline - height, 1), round(slot - 2, 1), height))
        return bars

    @property
    def ticks(self) -> list[tuple[float, str]]:
        """The bins' edges on the score axis: (x, label)."""
        if not self.bins:
            return []
        slot = self.plot_width / len(self.bins)
        edges = [(round(self.left + i * slot, 1), _number(b.low)) for i, b in enumerate(self.bins)]
        return [*edges, (round(self.left + self.plot_width, 1), _number(self.bins[-1].high))]

    @property
    def description(self) -> str:
        """The chart in words: its text alternative."""
        if not self.graded:
            return "No student has a final score yet."
        counts = "; ".join(f"{b.label} points: {b.count}" for b in self.bins)
        return f"Final scores of {self.graded} students, out of {_number(self.max_score)} points. {counts}."


@dataclass(frozen=True)
class CheckRate:
    check_id: str
    question: str
    visibility: str
    max_score: float
    statuses: Counter[str]

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    @property
    def passed(self) -> int:
        return self.statuses["passed"]

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 0.0

    @property
    def not_run(self) -> int:
        """Errors and timeouts: the code did not run to its end."""
        return self.statuses["error"] + self.statuses["timeout"]


@dataclass(frozen=True)
class Mistaken:
    """A student whose counting submission shows a mistake."""

    name: str
    email: str
    submission_id: str


@dataclass
class Mistake:
    code: str
    explanation: str
    students: list[Mistaken] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # where it was diagnosed


@dataclass(frozen=True)
class FailedJob:
    job_id: str
    submission_id: str
    student: str
    attempts: int
    created_at: datetime
    error: str  # the first line of its last run's error


@dataclass(frozen=True)
class Queue:
    waiting_fresh: int  # submissions waiting for their first grade
    waiting_regrades: int
    running: int
    failed: int
    failed_jobs: list[FailedJob]
    runs: int  # finished (graded) runs behind the percentiles
    percentiles: dict[int, float]  # seconds, nearest rank
    regrade: Progress | None

    @property
    def waiting(self) -> int:
        return self.waiting_fresh + self.waiting_regrades


@dataclass(frozen=True)
class Dashboard:
    assignment: Assignment
    roster: list[RosterLine]
    histogram: Histogram
    checks: list[CheckRate]
    mistakes: list[Mistake]
    queue: Queue
    reports: int  # counting submissions whose report was read

    @property
    def submitted(self) -> int:
        return sum(1 for line in self.roster if line.grade.submissions)

    @property
    def final_scores(self) -> list[float]:
        return [line.grade.final_score for line in self.roster if line.grade.final_score is not None]

    @property
    def median_final(self) -> float | None:
        scores = sorted(self.final_scores)
        if not scores:
            return None
        middle = len(scores) // 2
        return scores[middle] if len(scores) % 2 else (scores[middle - 1] + scores[middle]) / 2

    @property
    def max_score(self) -> float:
        return self.histogram.max_score


def dashboard(session: Session, assignment: Assignment) -> Dashboard:
    """Everything the dashboard shows (the caller has authorized the viewer as the course's staff)."""
    rows = grade_rows(session, assignment)
    dues = _extensions(session, assignment)
    roster = [
        RosterLine(row, dues.get(row.student_id, assignment.due_at), row.student_id in dues) for row in rows
    ]
    summaries = counting_summaries(session, rows)
    by_submission = {row.counting_submission_id: row for row in rows if row.counting_submission_id}
    return Dashboard(
        assignment=assignment,
        roster=roster,
        histogram=histogram([row.final_score for row in rows], _max_score(assignment, rows)),
        checks=check_rates(summaries.values()),
        mistakes=mistakes(summaries, by_submission, _explanations(assignment.catalog)),
        queue=queue_state(session, assignment),
        reports=len(summaries),
    )


def _extensions(session: Session, assignment: Assignment) -> dict[str, datetime]:
    query = select(Extension.user_id, Extension.due_at).where(Extension.assignment_id == assignment.id)
    return {user_id: due_at for user_id, due_at in session.execute(query)}


# Reports


@dataclass(frozen=True)
class CheckSeen:
    """A check as reports name it (one object for all the runs that list it)."""

    check_id: str
    question: str
    visibility: str
    max_score: float


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """What the dashboard reads of a graded run's report: each check's status and diagnosed mistakes."""

    checks: tuple[CheckSeen, ...]  # one tuple for the runs of the same checks
    statuses: tuple[str, ...]
    diagnoses: tuple[tuple[int, tuple[str, ...]], ...]  # (index in checks, mistake codes), where any


EMPTY_SUMMARY = ReportSummary((), (), ())


class SummaryCache:
    """Report summaries by run id, the most recently used kept. A graded run's report never changes (a
    regrade is a new run), so that each is parsed once per process: at 500 students, parsing the reports
    (17 kB each, their messages included) would be most of the page's time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._summaries: OrderedDict[str, ReportSummary] = OrderedDict()
        self._shared: dict[object, object] = {}  # check objects and tuples the summaries share
        self._lock = threading.Lock()

    def get_many(self, run_ids: Iterable[str]) -> dict[str, ReportSummary]:
        found = {}
        with self._lock:
            for run_id in run_ids:
                summary = self._summaries.get(run_id)
                if summary is not None:
                    self._summaries.move_to_end(run_id)
                    found[run_id] = summary
        return found

    def add(self, run_id: str, report_text: str | None) -> ReportSummary:
        summary = self._summarize(report_text)  # outside the lock (dict.setdefault is atomic)
        with self._lock:
            self._summaries[run_id] = summary
            while len(self._summaries) > self.size:
                self._summaries.popitem(last=False)
            if len(self._shared) > 10 * self.size:  # only a corpus of odd reports gets here
                self._shared.clear()
        return summary

    def clear(self) -> None:
        with self._lock:
            self._summaries.clear()
            self._shared.clear()

    def _share(self, value: Any) -> Any:
        return self._shared.setdefault(value, value)

    def _summarize(self, report_text: str | None) -> ReportSummary:
        try:
            report = json.loads(report_text or "{}")
        except ValueError:  # the grader writes every report; a broken one is left out, not a 500
            return EMPTY_SUMMARY
        checks = report.get("checks") if isinstance(report, dict) else None
        if not isinstance(checks, list):
            return EMPTY_SUMMARY
        seen, statuses, diagnoses = [], [], []
        for check in checks:
            if not isinstance(check, dict):
                continue
            seen.append(
                self._share(
                    CheckSeen(
                        check_id=str(check.get("id", "?")),
                        question=str(check.get("question", "")),
                        visibility=str(check.get("visibility", "")),
                        max_score=float(check.get("max_score") or 0),
                    )
                )
            )
            statuses.append(self._share(str(check.get("status", "failed"))))
            codes = diagnosis_codes(check)
            if codes:
                diagnoses.append((len(seen) - 1, self._share(tuple(codes))))
        return ReportSummary(self._share(tuple(seen)), tuple(statuses), tuple(diagnoses))


SUMMARIES = SummaryCache(size=20_000)  # under 1 kB each (42 checks)


def counting_summaries(session: Session, rows: Sequence[GradeRow]) -> dict[str, ReportSummary]:
    """The report summary of each counting submission's latest graded run (its grade), by submission:
    one query for the runs, and one for the reports not summarized yet, whatever the number of rows."""
    counting = [row.counting_submission_id for row in rows if row.counting_submission_id is not None]
    if not counting:
        return {}
    run_ids = {
        submission_id: run.id
        for submission_id, run in latest_graded_runs(session, counting, with_reports=False).items()
    }
    known = SUMMARIES.get_many(run_ids.values())
    missing = [run_id for run_id in run_ids.values() if run_id not in known]
    if missing:
        texts = select(GradingRun.id, GradingRun.report).where(GradingRun.id.in_(missing))
        for run_id, text in session.execute(texts):
            known[run_id] = SUMMARIES.add(run_id, text)
    return {submission_id: known[run_id] for submission_id, run_id in run_ids.items() if run_id in known}


def _max_score(assignment: Assignment, rows: Sequence[GradeRow]) -> float:
    graded = [row.max_score for row in rows if row.max_score is not None and row.score is not None]
    if graded:
        return max(graded)
    try:
        return catalog_max_score(assignment.catalog)
    except UnknownAssignment:
        return 0.0


def _explanations(catalog: str) -> dict[str, str]:
    try:
        return dict(get_assignment(catalog).mistakes)
    except UnknownAssignment:
        return {}


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def nice_step(span: float, bins: int = HISTOGRAM_BINS) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that cuts `span` into at most `bins` bins."""
    if span <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(span / bins))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        step = factor * magnitude
        if span / step <= bins + 1e-9:
            return step
    return 10.0 * magnitude


def histogram(final_scores: Sequence[float | None], max_score: float) -> Histogram:
    """Final scores in bins [low, high), the last one [low, max_score]; students without one apart."""
    scores = [score for score in final_scores if score is not None]
    top = max([max_score, *scores]) if scores else max_score
    if top <= 0:
        top = 1.0
    step = nice_step(top)
    count = max(1, math.ceil(top / step - 1e-9))
    counts = [0] * count
    for score in scores:
        index = min(count - 1, max(0, int(score // step)))
        counts[index] += 1
    bins = [
        Bin(low=i * step, high=min(top, (i + 1) * step), count=counts[i], last=i == count - 1)
        for i in range(count)
    ]
    return Histogram(bins=bins, graded=len(scores), ungraded=len(final_scores) - len(scores), max_score=top)


def check_rates(summaries: Iterable[ReportSummary]) -> list[CheckRate]:
    """Each check's statuses over the reports, in the order the reports list them."""
    rates: dict[str, CheckRate] = {}
    for summary in summaries:
        for check, status in zip(summary.checks, summary.statuses, strict=True):
            rate = rates.get(check.check_id)
            if rate is None:
                rate = CheckRate(check.check_id, check.question, check.visibility, check.max_score, Counter())
                rates[check.check_id] = rate
            rate.statuses[status] += 1
    return list(rates.values())


def diagnosis_codes(check: dict[str, Any]) -> list[str]:
    """A check's diagnosed mistakes: codes (the grader writes strings; a dict's `code` is read too)."""
    entries = check.get("diagnosis")
    if not isinstance(entries, list):
        return []
    codes = []
    for entry in entries:
        code = entry.get("code") if isinstance(entry, dict) else entry
        if isinstance(code, str) and code:
            codes.append(code)
    return codes


def mistakes(
    summaries: dict[str, ReportSummary], students: dict[str, GradeRow], explanations: dict[str, str]
) -> list[Mistake]:
    """The diagnosed mistakes, most frequent first: each student counts once, whatever the number of
    checks that diagnosed it."""
    found: dict[str, Mistake] = {}
    for submission_id, summary in summaries.items():
        row = students.get(submission_id)
        if row is None:
            continue
        seen_here: set[str] = set()
        for index, codes in summary.diagnoses:
            check_id = summary.checks[index].check_id
            for code in codes:
                mistake = found.setdefault(code, Mistake(code, explanations.get(code, "")))
                if check_id not in mistake.checks:
                    mistake.checks.append(check_id)
                if code not in seen_here:
                    seen_here.add(code)
                    mistake.students.append(Mistaken(row.name, row.email, submission_id))
    for mistake in found.values():
        mistake.students.sort(key=lambda student: (student.name.lower(), student.email))
    return sorted(found.values(), key=lambda mistake: (-len(mistake.students), mistake.code))


def nearest_rank(values: Sequence[float], percent: int) -> float:
    """The nearest-rank percentile of sorted values (p99 of 500 runs: the 495th)."""
    rank = max(1, math.ceil(percent / 100 * len(values)))
    return values[rank - 1]


def queue_state(session: Session, assignment: Assignment) -> Queue:
    of_assignment = (Submission.id == GradingJob.submission_id) & (Submission.assignment_id == assignment.id)
    states = (JobStatus.queued, JobStatus.running, JobStatus.failed)
    counts: Counter[tuple[JobStatus, bool]] = Counter()
    grouped = (
        select(GradingJob.status, GradingJob.priority, func.count())
        .join(Submission, of_assignment)
        .where(GradingJob.status.in_(states))
        .group_by(GradingJob.status, GradingJob.priority)
    )
    for status, priority, number in session.execute(grouped):
        counts[(JobStatus(status), priority > PRIORITY_SUBMISSION)] += number
    durations = session.scalars(
        select(GradingRun.seconds)
        .join(Submission, Submission.id == GradingRun.submission_id)
        .where(
            Submission.assignment_id == assignment.id,
            GradingRun.status == RunStatus.graded,
            GradingRun.seconds.is_not(None),
        )
    )
    seconds = sorted(value for value in durations if value is not None)
    failed = sum(number for (status, _), number in counts.items() if status is JobStatus.failed)
    return Queue(
        waiting_fresh=counts[(JobStatus.queued, False)],
        waiting_regrades=counts[(JobStatus.queued, True)],
        running=counts[(JobStatus.running, False)] + counts[(JobStatus.running, True)],
        failed=failed,
        failed_jobs=_failed_jobs(session, assignment) if failed else [],
        runs=len(seconds),
        percentiles={p: nearest_rank(seconds, p) for p in PERCENTILES} if seconds else {},
        regrade=last_regrade(session, assignment),
    )


def _failed_jobs(session: Session, assignment: Assignment) -> list[FailedJob]:
    """The latest jobs failed for good (three infrastructure failures), with their last run's error."""
    query = (
        select(GradingJob, User.name)
        .join(Submission, Submission.id == GradingJob.submission_id)
        .join(User, User.id == Submission.student_id)
        .where(Submission.assignment_id == assignment.id, GradingJob.status == JobStatus.failed)
        .order_by(GradingJob.created_at.desc(), GradingJob.id)
        .limit(FAILED_JOBS_SHOWN)
    )
    jobs = [(job, name) for job, name in session.execute(query)]
    errors: dict[str, str] = {}
    runs = (
        select(GradingRun.job_id, GradingRun.error)
        .where(GradingRun.job_id.in_([job.id for job, _ in jobs]), GradingRun.status == RunStatus.failed)
        .order_by(GradingRun.finished_at)
    )
    for job_id, error in session.execute(runs):  # the last one of each wins
        lines = (error or "").strip().splitlines()
        errors[job_id] = lines[0][:300] if lines else ""
    return [
        FailedJob(job.id, job.submission_id, name, job.attempts, job.created_at, errors.get(job.id, ""))
        for job, name in jobs
    ]
