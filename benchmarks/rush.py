"""`make bench`, second part: a deadline rush against a running `grader serve` with the Docker sandbox.

200 submissions from 50 concurrent clients (50 students, 4 hand-ins each, back to back) go through the
REST API while the service's workers grade them. We report the upload latency (request to 202) at p50
and p99, the time until the last grade is stored, submissions graded per minute, and that rate against
the plain executor's, measured in the same run once the service has stopped: `Grader.grade` in a loop on
as many threads as the service has workers, with a pool of as many containers. Then we check that every
hand-in became exactly one submission with exactly one graded run. Timings are reported, never
asserted: the exit status is 1 only if a submission was lost or graded twice.

`--quick` tries it with 20 submissions from 5 clients; `--think S` makes each client wait S seconds
between its hand-ins (back to back, the default, 50 clients keep the API saturated).
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx2
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from grader import EXAMPLE_SUBMISSION
from grader.core import Grader
from grader.intake.uploads import load_submission
from grader.sandbox_client.docker_executor import CONTAINER_LABEL
from grader.settings import get_settings

CATALOG = "cs231n-a2-fc"
GRADER_COMMAND = str(Path(sys.executable).parent / "grader")  # the venv's, as `make bench` runs it
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.org", "rush-benchmark-password"
TOKEN_SCOPES = ["submissions:write", "submissions:read", "grades:read"]
GRADED_FILES = ("layers.py", "fc_net.py", "optim.py")
UPLOAD_TIMEOUT = 60.0
# A client whose connection fails retries with the same Idempotency-Key, as an LMS would: the service
# must answer with the same submission, never store a second one (which the ledger would count).
UPLOAD_ATTEMPTS = 3
POLL_SECONDS = 1.0
# No grading finished for this long while some wait: the workers have stopped (a grading takes about a
# second, and a job whose worker died comes back after its 120 s lease), so waiting on is pointless.
STALL_SECONDS = 300.0
START_TIMEOUT = 120.0
STOP_TIMEOUT = 90.0  # uvicorn's graceful shutdown (30 s), then the gradings in progress
UPLOAD_P99_AIM = 0.200
THROUGHPUT_RATIO_AIM = 0.85


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def percentile(values: Sequence[float], share: int) -> float:
    """The `share`-th percentile, inclusive of the extremes (with 20 samples, p99 is near the maximum)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[share - 1]


def wait_until_warm(docker_client: Any, owner_pid: int, count: int, timeout: float = 60.0) -> bool:
    """True once `count` sandbox containers of the process `owner_pid` run: the service and the plain
    executor both start with a full pool, as bench.py measures a warm one."""
    owner = [socket.gethostname(), str(owner_pid)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = docker_client.containers.list(filters={"label": CONTAINER_LABEL, "status": "running"})
        if sum(c.labels.get(CONTAINER_LABEL, "").split(":")[:2] == owner for c in running) >= count:
            return True
        time.sleep(0.2)
    return False


class RunningService:
    """`grader serve` on a free port with its own data dir (SQLite and files), its first admin created;
    stopped with SIGTERM on exit, whatever happened, and its data dir removed."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._data_dir = tempfile.TemporaryDirectory(prefix="grader-rush-")
        self.data_dir = Path(self._data_dir.name)
        self.log_path = self.data_dir / "serve.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.log_text = ""  # the server's output, kept when its data dir is removed

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key != "GRADER_DATABASE_URL"}
        env.update(
            GRADER_DATA_DIR=str(self.data_dir),
            GRADER_SANDBOX="docker",
            GRADER_SANDBOX_POOL_SIZE=str(self.workers),  # what serve picks by default, said explicitly
        )
        return env

    def __enter__(self) -> RunningService:
        try:
            self._create_admin()
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _create_admin(self) -> None:
        command = [GRADER_COMMAND, "users", "create", ADMIN_EMAIL, "--name", "Admin", "--admin"]
        subprocess.run(
            [*command, "--password-stdin"],
            input=f"{ADMIN_PASSWORD}\n".encode(),
            env=self.environment(),
            check=True,
            capture_output=True,
        )

    def _start(self) -> None:
        command = [GRADER_COMMAND, "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("wb") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [*command, "--workers", str(self.workers)],
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"grader serve exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx2.get(f"{self.url}/healthz", timeout=2.0).status_code == 200:
                    return
            except httpx2.TransportError:
                pass  # not listening yet
            time.sleep(0.2)
        raise RuntimeError(
            f"grader serve did not answer /healthz in {START_TIMEOUT:.0f} s:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def close(self) -> None:
        """SIGTERM, then wait for the gradings in progress (and the pool's removal); kill only if stuck."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(OSError):
            self.log_text = self.log_path.read_text(errors="replace")
        self._data_dir.cleanup()


@dataclass(frozen=True)
class Course:
    """Where the rush submits: an assignment of a new course, its students, and an LMS's API token."""

    assignment_id: str
    students: list[str]
    token: str


def set_up_course(url: str, student_count: int) -> Course:
    """A course, `student_count` students and an assignment due in an hour, made through the API."""
    with httpx2.Client(base_url=url, timeout=30.0) as http:
        signed_in = http.post(
            "/api/v1/auth/token", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        http.headers["Authorization"] = f"Bearer {signed_in.raise_for_status().json()['access_token']}"
        course = http.post("/api/v1/courses", json={"slug": "rush", "title": "Deadline rush"})
        course_id = course.raise_for_status().json()["id"]
        students = [f"student{n:03d}@example.org" for n in range(student_count)]
        for number, email in enumerate(students):
            member = {"email": email, "name": f"Student {number}", "role": "student"}
            http.post(f"/api/v1/courses/{course_id}/members", json=member).raise_for_status()
        due_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assignment = {"slug": "a2", "title": "Assignment 2", "catalog": CATALOG, "due_at": due_at}
        created = http.post(f"/api/v1/courses/{course_id}/assignments", json=assignment)
        token = http.post(f"/api/v1/courses/{course_id}/tokens", json={"name": "lms", "scopes": TOKEN_SCOPES})
        return Course(
            created.raise_for_status().json()["id"], students, token.raise_for_status().json()["token"]
        )


@dataclass(frozen=True)
class Upload:
    """One hand-in: its latency from the first try to the 202 (or to giving up), and what came back."""

    student: str
    seconds: float
    submission_id: str | None  # None: refused, or no answer after every attempt
    attempts: int
    problem: str


def upload(http: httpx2.Client, path: str, student: str, files: dict[str, bytes]) -> Upload:
    """Hand in `files` for `student`; a failed connection or a 5xx is retried with the same key."""
    key = uuid.uuid4().hex
    parts = [("files", (name, content, "text/x-python")) for name, content in files.items()]
    start = time.perf_counter()
    problem, attempt = "", 0
    while attempt < UPLOAD_ATTEMPTS:
        attempt += 1
        try:
            answer = http.post(path, files=parts, data={"student": student}, headers={"Idempotency-Key": key})
        except httpx2.TransportError as exc:
            problem = f"{type(exc).__name__}: {exc}"
            continue
        if answer.status_code == 202:
            return Upload(student, time.perf_counter() - start, answer.json()["id"], attempt, "")
        problem = f"{answer.status_code}: {answer.text[:200]}"
        if answer.status_code < 500:
            break  # a refusal: asking again gets the same answer
    return Upload(student, time.perf_counter() - start, None, attempt, problem)


@dataclass(frozen=True)
class Rush:
    uploads: list[Upload]
    started_at: datetime  # the server's clock is this machine's: graded_at is compared with it
    seconds: float  # until the last client had its last answer


def share_out(total: int, parts: int) -> list[int]:
    """`total` split into `parts` counts that differ by one at most."""
    return [total // parts + (1 if n < total % parts else 0) for n in range(parts)]


def rush(url: str, course: Course, submissions: int, think: float, on_upload: Callable[[], None]) -> Rush:
    """Every student a client of its own, handing in its share of `submissions` one after another
    (`think` seconds apart); the clients connect first and then start together, as at a deadline, each
    after a random wait of up to `think` seconds (the same in every run), so that they do not move in
    lockstep."""
    files = {name: (EXAMPLE_SUBMISSION / name).read_bytes() for name in GRADED_FILES}
    path = f"/api/v1/assignments/{course.assignment_id}/submissions"
    start_together = threading.Barrier(len(course.students) + 1)

    def client(number: int, student: str, count: int) -> list[Upload]:
        headers = {"Authorization": f"Bearer {course.token}"}
        with httpx2.Client(base_url=url, headers=headers, timeout=UPLOAD_TIMEOUT) as http:
            start_together.wait(timeout=60)
            time.sleep(random.Random(number).uniform(0, think))
            uploads = []
            for turn in range(count):
                if turn:
                    time.sleep(think)
                uploads.append(upload(http, path, student, files))
                on_upload()
            return uploads

    counts = share_out(submissions, len(course.students))
    with ThreadPoolExecutor(max_workers=len(course.students)) as clients:
        batches = [
            clients.submit(client, number, student, count)
            for number, (student, count) in enumerate(zip(course.students, counts, strict=True))
        ]
        start_together.wait(timeout=60)
        started_at, start = datetime.now(UTC), time.perf_counter()
        uploads = [item for batch in batches for item in batch.result()]
    return Rush(uploads, started_at, time.perf_counter() - start)


@dataclass(frozen=True)
class Grading:
    """The assignment's submissions as the API lists them at the end, and the status of each one's runs."""

    listed: list[dict[str, Any]]
    runs: dict[str, list[dict[str, Any]]]  # submission id -> its runs, with status and seconds
    gave_up: bool  # at the timeout, or because grading had stalled

    def run_statuses(self) -> list[list[str]]:
        return [[run["status"] for run in runs] for runs in self.runs.values()]


def wait_for_grades(
    http: httpx2.Client, assignment_id: str, expected: int, timeout: float, on_poll: Callable[[int], None]
) -> tuple[list[dict[str, Any]], bool]:
    """The submissions once at least `expected` are listed and none is still queued or running (or at
    the timeout, or when grading has stalled: then True)."""
    path = f"/api/v1/assignments/{assignment_id}/submissions"
    deadline = time.monotonic() + timeout
    finished_before, progress_at = -1, time.monotonic()
    while True:
        listed: list[dict[str, Any]] = http.get(path).raise_for_status().json()
        finished = sum(entry["status"] in ("graded", "failed") for entry in listed)
        on_poll(finished)
        if len(listed) >= expected and finished == len(listed):
            return listed, False
        if finished != finished_before:
            finished_before, progress_at = finished, time.monotonic()
        if time.monotonic() > min(deadline, progress_at + STALL_SECONDS):
            return listed, True
        time.sleep(POLL_SECONDS)


def follow_grading(
    url: str, course: Course, expected: int, timeout: float, on_poll: Callable[[int], None]
) -> Grading:
    """Wait for the grades, then read every submission's runs (the list shows only the latest grade)."""
    headers = {"Authorization": f"Bearer {course.token}"}
    with httpx2.Client(base_url=url, headers=headers, timeout=60.0) as http:
        listed, gave_up = wait_for_grades(http, course.assignment_id, expected, timeout, on_poll)
        runs = {
            entry["id"]: http.get(f"/api/v1/submissions/{entry['id']}/runs").raise_for_status().json()
            for entry in listed
        }
    return Grading(listed, runs, gave_up)


@dataclass(frozen=True)
class Ledger:
    """What became of the hand-ins, counted per student (the list names whose each submission is, not
    which hand-in it came from): each one stored once and graded exactly once, or not."""

    not_stored: int  # a student has fewer submissions than hand-ins
    ungraded: int  # stored, but not graded (failed for good, or still waiting at the end)
    stored_twice: int  # a student has more submissions than hand-ins: a retry stored a second one
    graded_twice: int  # a submission with more than one graded run
    refused: int  # hand-ins without a 202, even after the retries (stored or not)
    unanswered: int  # submissions stored whose 202 no client received: the student thinks it failed
    vanished: int  # a 202's submission missing from the list (also counted in not_stored)

    @property
    def lost(self) -> int:
        return self.not_stored + self.ungraded

    @property
    def duplicated(self) -> int:
        return self.stored_twice + self.graded_twice


def account(uploads: Sequence[Upload], grading: Grading) -> Ledger:
    sent = Counter(item.student for item in uploads)
    stored = Counter(entry["student"]["email"] for entry in grading.listed)
    accepted = {item.submission_id for item in uploads if item.submission_id is not None}
    listed = {entry["id"] for entry in grading.listed}
    stored_twice = sum(max(0, stored[student] - sent[student]) for student in stored)
    return Ledger(
        not_stored=sum(max(0, count - stored[student]) for student, count in sent.items()),
        ungraded=sum(entry["status"] != "graded" for entry in grading.listed),
        stored_twice=stored_twice,
        graded_twice=sum(statuses.count("graded") > 1 for statuses in grading.run_statuses()),
        refused=sum(item.submission_id is None for item in uploads),
        unanswered=max(0, len(listed - accepted) - stored_twice),
        vanished=len(accepted - listed),
    )


def seconds_to_last_grade(rush: Rush, grading: Grading) -> float | None:
    """From the first upload to the last grade stored (its run's finish, by the server's clock)."""
    graded = [datetime.fromisoformat(entry["graded_at"]) for entry in grading.listed if entry["graded_at"]]
    return (max(graded) - rush.started_at).total_seconds() if graded else None


@dataclass(frozen=True)
class Baseline:
    """The plain executor's run: its rate, its reports with full marks, and each grading's seconds."""

    per_minute: float
    full_marks: int
    seconds: list[float]


def plain_executor(submissions: int, workers: int, docker_client: Any) -> Baseline:
    """`Grader.grade` in a loop on `workers` threads with a pool of as many containers: the service's
    grading without the API, the database and the queue."""
    settings = get_settings().model_copy(update={"sandbox_pool_size": workers})
    submission = load_submission(EXAMPLE_SUBMISSION)
    with Grader(settings, sandbox="docker") as grader:
        wait_until_warm(docker_client, os.getpid(), workers)

        def grade(seed: int) -> tuple[bool, float]:
            start = time.perf_counter()
            report = grader.grade(submission.files, CATALOG, seed=seed, origins=submission.origins)
            return report.score == report.max_score, time.perf_counter() - start

        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as threads:
            outcomes = list(threads.map(grade, range(submissions)))
        elapsed = time.perf_counter() - start
    full_marks = sum(full for full, _ in outcomes)
    return Baseline(submissions / elapsed * 60, full_marks, [seconds for _, seconds in outcomes])


# The last line of a traceback (`sqlite3.OperationalError: database is locked`) or a thread's death.
EXCEPTION_LINE = re.compile(r"^[\w.]*(?:Error|Exception)\b.*$", re.MULTILINE)


def server_errors(log_text: str) -> Counter[str]:
    """The exceptions in the server's output, by their first 120 characters."""
    return Counter(line[:120] for line in EXCEPTION_LINE.findall(log_text))


@dataclass(frozen=True)
class ServiceRun:
    rush: Rush
    grading: Grading
    warm: bool
    errors: Counter[str]  # in the server's output


@dataclass(frozen=True)
class RushShape:
    submissions: int
    clients: int
    think: float  # seconds a client waits between its hand-ins


def run_service(
    workers: int, shape: RushShape, timeout: float, docker_client: Any, console: Console
) -> ServiceRun:
    """Start the service, set up its course, rush it and follow its grading; the service is stopped."""
    with RunningService(workers) as service:
        assert service.process is not None
        course = set_up_course(service.url, min(shape.clients, shape.submissions))
        warm = wait_until_warm(docker_client, service.process.pid, workers)
        with Progress(console=console, transient=True) as progress:
            sent = progress.add_task("uploads answered", total=shape.submissions)
            graded = progress.add_task("graded (or failed for good)", total=shape.submissions)

            def answered() -> None:
                progress.advance(sent)

            the_rush = rush(service.url, course, shape.submissions, shape.think, answered)
            accepted = sum(item.submission_id is not None for item in the_rush.uploads)

            def show(finished: int) -> None:
                progress.update(graded, completed=finished)

            grading = follow_grading(service.url, course, accepted, timeout, show)
    return ServiceRun(the_rush, grading, warm, server_errors(service.log_text))


def summary_table(
    run: ServiceRun, ledger: Ledger, baseline_rate: float, workers: int, shape: RushShape
) -> Table:
    latencies = [item.seconds for item in run.rush.uploads if item.submission_id is not None]
    graded = sum(entry["status"] == "graded" for entry in run.grading.listed)
    last = seconds_to_last_grade(run.rush, run.grading)
    rate = graded / last * 60 if last else 0.0
    ratio = rate / baseline_rate
    p50, p99 = (percentile(latencies, 50), percentile(latencies, 99)) if latencies else (0.0, 0.0)
    pace = f", each {shape.think:g} s after its last answer" if shape.think else ", back to back"
    table = Table(
        title=f"deadline rush: grader serve with {workers} workers and a pool of {workers} (Docker)",
        caption=f"{shape.submissions} submissions through the API from {shape.clients} clients{pace}",
    )
    for column in ("measure", "value", "aim", "met"):
        table.add_column(column)
    rows = [
        ("upload latency, request to 202: p50", f"{p50 * 1000:.0f} ms", "", ""),
        (
            "upload latency, request to 202: p99",
            f"{p99 * 1000:.0f} ms",
            "under 200 ms",
            _met(p99 < UPLOAD_P99_AIM),
        ),
        ("the last upload answered, from the rush's start", f"{run.rush.seconds:.1f} s", "", ""),
        ("uploads without a 202 after 3 tries", str(ledger.refused), "0", _met(ledger.refused == 0)),
        ("time until the last grade was stored", "-" if last is None else f"{last:.1f} s", "", ""),
        ("service: graded per minute", f"{rate:.1f}", "", ""),
        (
            f"plain executor: Grader.grade in a loop, {workers} threads, per minute",
            f"{baseline_rate:.1f}",
            "",
            "",
        ),
        (
            "ratio service / plain executor",
            f"{ratio:.2f}",
            "0.85 or more",
            _met(ratio >= THROUGHPUT_RATIO_AIM),
        ),
        ("lost: hand-ins not stored, or not graded", str(ledger.lost), "0", _met(ledger.lost == 0)),
        ("graded twice, or stored twice", str(ledger.duplicated), "0", _met(ledger.duplicated == 0)),
    ]
    for row in rows:
        table.add_row(*row)
    return table


def _met(ok: bool) -> str:
    return "yes" if ok else "[red]no[/red]"


def notes(run: ServiceRun, ledger: Ledger, baseline: Baseline, workers: int) -> list[str]:
    """What the table leaves out: the ledger, retries, runs, scores, and where the service's time went
    (a grading slower than the plain executor's, or workers idle between gradings)."""
    retried = sum(item.attempts > 1 for item in run.rush.uploads)
    problems = Counter(item.problem for item in run.rush.uploads if item.problem)
    runs = Counter(status for statuses in run.grading.run_statuses() for status in statuses)
    full = sum(
        entry["status"] == "graded" and entry["score"] == entry["max_score"] for entry in run.grading.listed
    )
    run_seconds = [item["seconds"] for runs in run.grading.runs.values() for item in runs if item["seconds"]]
    last = seconds_to_last_grade(run.rush, run.grading)
    lines = [
        f"ledger: {ledger}",
        f"uploads retried: {retried}; runs by status: {dict(runs)}",
        f"full marks (the example is correct): service {full} of {len(run.grading.listed)}, "
        f"plain executor {baseline.full_marks} of {len(baseline.seconds)}",
    ]
    if run_seconds and last:
        lines.append(
            f"grading one submission, median: service's runs {statistics.median(run_seconds):.3f} s, "
            f"plain executor {statistics.median(baseline.seconds):.3f} s; the service's {workers} workers "
            f"were grading {sum(run_seconds) / (workers * last):.0%} of the time until the last grade"
        )
    lines += [f"upload problem x{count}: {problem}" for problem, count in problems.most_common(5)]
    if run.grading.gave_up:
        lines.append(
            "[red]gave up waiting for the grades (the timeout, or none finished in "
            f"{STALL_SECONDS:.0f} s): the figures are of the ones stored by then[/red]"
        )
    lines += [f"server error x{count}: {line}" for line, count in run.errors.most_common(6)]
    if not run.warm:
        lines.append("the service's pool was not full when the rush began")
    return lines


def main(
    submissions: int = typer.Option(200, min=1, help="submissions in the rush"),
    clients: int = typer.Option(50, min=1, help="concurrent clients, one student each"),
    workers: int = typer.Option(os.cpu_count() or 1, min=1, help="grading workers (and pool size)"),
    timeout: float = typer.Option(900.0, min=1, help="seconds to wait for the last grade"),
    think: float = typer.Option(0.0, min=0, help="seconds each client waits between its hand-ins"),
    quick: bool = typer.Option(False, help="a short try: 20 submissions from 5 clients"),
) -> None:
    import docker

    from grader.sandbox_client.images import build_sandbox_image

    if quick:
        submissions, clients = 20, 5
    shape = RushShape(submissions, clients, think)
    console = Console(width=140)
    load_before = os.getloadavg()[0]
    docker_client = docker.from_env()
    try:
        build_sandbox_image(docker_client, log=lambda line: console.print(line))
        run = run_service(workers, shape, timeout, docker_client, console)
        ledger = account(run.rush.uploads, run.grading)
        console.print(f"the service has stopped; the plain executor grades {submissions} submissions")
        baseline = plain_executor(submissions, workers, docker_client)
    finally:
        docker_client.close()
    console.print(summary_table(run, ledger, baseline.per_minute, workers, shape))
    for line in notes(run, ledger, baseline, workers):
        console.print(line)
    # Other work on the machine (a test suite, say) slows the service and the plain executor unequally.
    console.print(
        f"1-minute load average on {os.cpu_count()} cores: {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after"
    )
    if ledger.lost or ledger.duplicated:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
