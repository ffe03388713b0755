"""Submitting through the API: loose files and zips as students make them, one submission per
Idempotency-Key (also for requests at the same moment), and every bad request refused with a clear
message, leaving nothing behind: no row, no stored file, no job."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from grader import EXAMPLE_SUBMISSION
from grader.service.db import utcnow
from grader.service.grading import queue
from grader.service.grading.models import GradingJob
from grader.service.submissions.models import Submission, SubmissionFile
from tests.grader.service.api.conftest import GRADED_NAMES, World, example_files, example_zip


def submissions_url(world: World) -> str:
    return f"/api/v1/assignments/{world.assignment}/submissions"


def post(world: World, role: str = "student", key: str | None = None, **keywords: Any) -> Any:
    keywords.setdefault("files", example_files())
    headers = {**world.headers[role], **({"Idempotency-Key": key} if key else {})}
    return world.client.post(submissions_url(world), headers=headers, **keywords)


def what_is_stored(world: World) -> tuple[int, int, int, int]:
    """Submissions, their files' rows, jobs, and files in the store."""
    with world.session() as session:
        counts = [
            session.scalar(select(func.count()).select_from(table))
            for table in (Submission, SubmissionFile, GradingJob)
        ]
    root: Path = world.app.state.store.root
    stored = sum(1 for path in root.rglob("*") if path.is_file()) if root.exists() else 0
    return (*[int(count or 0) for count in counts], stored)


def test_a_student_submits_loose_files_and_reads_their_own_status(world: World) -> None:
    answer = post(world)
    assert answer.status_code == 202, answer.text
    accepted = answer.json()
    assert accepted["status"] == "queued"
    assert accepted["status_url"].endswith(f"/api/v1/submissions/{accepted['id']}")
    mine = world.client.get(accepted["status_url"], headers=world.headers["student"]).json()
    assert mine["student"]["email"] == world.emails["student"] and mine["status"] == "queued"
    assert mine["score"] is None and mine["late"] is False
    listed = world.client.get(submissions_url(world), headers=world.headers["student"]).json()
    assert [item["id"] for item in listed] == [accepted["id"]]  # not the owner's graded one
    staff = world.client.get(submissions_url(world), headers=world.headers["ta"]).json()
    assert {item["id"] for item in staff} == {accepted["id"], world.submission}


@pytest.mark.parametrize(
    "zip_name, prefix",
    [
        ("assignment2.zip", "assignment2/cs231n/"),  # the course's collectSubmission.sh layout
        ("a2.zip", "cs231n\\"),  # Windows backslashes
        ("Archive.zip", "assignment2/cs231n/"),
    ],
)
def test_a_zip_is_accepted_and_its_files_stored_with_where_they_were(
    world: World, zip_name: str, prefix: str
) -> None:
    archive = example_zip(prefix)
    if zip_name == "Archive.zip":  # macOS Finder adds __MACOSX/ and ._ files
        buffer = io.BytesIO(archive)
        with zipfile.ZipFile(buffer, "a") as extra:
            extra.writestr("__MACOSX/assignment2/cs231n/._layers.py", b"\x00\x05\x16\x07")
            extra.writestr("assignment2/.DS_Store", b"\x00\x00")
        archive = buffer.getvalue()
    answer = post(world, files=[("files", (zip_name, archive))])
    assert answer.status_code == 202, answer.text
    with world.session() as session:
        rows = session.scalars(
            select(SubmissionFile).where(SubmissionFile.submission_id == answer.json()["id"])
        )
        origins = {row.name: row.origin for row in rows}
    assert set(origins) == set(GRADED_NAMES)
    assert origins["fc_net.py"].replace("\\", "/").endswith("cs231n/classifiers/fc_net.py")


def test_files_with_the_paths_a_browser_or_windows_sends_keep_their_own_names(world: World) -> None:
    parts = [
        ("files", (f"C:\\Users\\me\\cs231n\\{name}", (EXAMPLE_SUBMISSION / name).read_bytes()))
        for name in GRADED_NAMES
    ]
    assert post(world, files=parts).status_code == 202


def test_the_same_idempotency_key_returns_the_same_submission_never_a_second(world: World) -> None:
    before = what_is_stored(world)
    first = post(world, key="retry-1")
    again = post(world, key="retry-1")
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    other = post(world, key="retry-2")
    assert other.json()["id"] != first.json()["id"]
    assert what_is_stored(world)[:3] == (before[0] + 2, before[1] + 6, before[2] + 2)


def test_a_double_click_sends_one_key_twice_at_once_and_makes_one_submission(world: World) -> None:
    headers = {**world.headers["student"], "Idempotency-Key": "double-click"}

    def send(_: int) -> Any:
        return world.client.post(submissions_url(world), headers=headers, files=example_files())

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(send, range(4)))
    assert [answer.status_code for answer in answers] == [202] * 4, [answer.text for answer in answers]
    assert len({answer.json()["id"] for answer in answers}) == 1
    with world.session() as session:
        mine = (
            select(func.count()).select_from(Submission).where(Submission.idempotency_key == "double-click")
        )
        assert session.scalar(mine) == 1


def _zip(entries: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
        if symlink is not None:
            link = zipfile.ZipInfo(symlink)
            link.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(link, "/etc/passwd")
    return buffer.getvalue()


LAYERS = (EXAMPLE_SUBMISSION / "layers.py").read_bytes()
BAD_UPLOADS: dict[str, tuple[list[tuple[str, tuple[str, bytes]]], int, str]] = {
    "no files": ([], 422, "no files"),
    "no graded file": ([("files", ("notes.py", b"print(1)\n"))], 422, "no graded file"),
    "not python": ([("files", ("layers.txt", LAYERS))], 422, "only .py files"),
    "zip and files": (
        [("files", ("a.zip", _zip({"layers.py": LAYERS}))), ("files", ("optim.py", LAYERS))],
        422,
        "not both",
    ),
    "same name twice": (
        [("files", ("layers.py", LAYERS)), ("files", ("x/layers.py", LAYERS))],
        422,
        "same name",
    ),
    "file over the limit": ([("files", ("layers.py", b"#" * (2 * 1024**2 + 1)))], 413, "larger than"),
    "zip bomb": ([("files", ("bomb.zip", _zip({"layers.py": b"0" * (201 * 1024**2)})))], 413, "limit"),
    "dot-dot in a zip": ([("files", ("a.zip", _zip({"../layers.py": LAYERS})))], 422, "'..'"),
    "absolute path in a zip": (
        [("files", ("a.zip", _zip({"/tmp/layers.py": LAYERS})))],
        422,
        "absolute path",
    ),
    "link in a zip": (
        [("files", ("a.zip", _zip({"optim.py": LAYERS}, symlink="layers.py")))],
        422,
        "symbolic link",
    ),
    "too many entries": (
        [("files", ("a.zip", _zip({f"junk/{n}.txt": b"" for n in range(5001)})))],
        422,
        "entries",
    ),
    "not text": ([("files", ("layers.py", b"\xff\xfe\x00binary\x80"))], 422, "UTF-8"),
    "not a zip": ([("files", ("a.zip", b"PK\x03\x04 not really"))], 422, "zip"),
}


@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
def test_a_bad_upload_is_refused_clearly_and_leaves_nothing_behind(world: World, case: str) -> None:
    files, status, words = BAD_UPLOADS[case]
    before = what_is_stored(world)
    answer = post(world, files=files)
    assert answer.status_code == status, answer.text
    assert words.lower() in answer.json()["detail"].lower(), answer.json()["detail"]
    assert what_is_stored(world) == before
    incoming = world.app.state.settings.data_dir / "incoming"
    assert not incoming.exists() or not any(incoming.iterdir())


def test_a_request_body_over_the_upload_limit_is_refused_before_it_is_read(world: World) -> None:
    limit = world.app.state.settings.upload_bytes
    answer = post(world, files=[("files", ("a.zip", b"0" * (limit + 2 * 1024**2)))])
    assert answer.status_code == 413 and "limit" in answer.json()["detail"]


def _set(world: World, **changes: Any) -> None:
    answer = world.client.patch(
        f"/api/v1/assignments/{world.assignment}", json=changes, headers=world.headers["instructor"]
    )
    assert answer.status_code == 200, answer.text


BAD_REQUESTS: dict[str, tuple[Callable[[World], Any], int, str]] = {
    "unknown assignment": (
        lambda w: w.client.post(
            "/api/v1/assignments/nope/submissions", headers=w.headers["student"], files=example_files()
        ),
        404,
        "no such assignment",
    ),
    "a student not in the course": (
        lambda w: post(w, "instructor", data={"student": w.emails["other_student"]}),
        404,
        "not a student of this course",
    ),
    "a token without the student": (lambda w: post(w, "token:submissions:write"), 422, "student"),
    "staff without the student": (lambda w: post(w, "ta"), 422, "student"),
    "someone else's work from a student": (
        lambda w: post(w, data={"student": w.emails["owner"]}),
        403,
        "own work",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_a_bad_submission_request_is_refused_and_leaves_nothing(world: World, case: str) -> None:
    send, status, words = BAD_REQUESTS[case]
    before = what_is_stored(world)
    answer = send(world)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]
    assert what_is_stored(world) == before


def test_past_the_submission_limit_is_refused_with_409(world: World) -> None:
    _set(world, max_submissions=1)
    assert post(world).status_code == 202
    before = what_is_stored(world)
    answer = post(world)
    assert answer.status_code == 409 and "limit of 1 submissions" in answer.json()["detail"]
    assert what_is_stored(world) == before
    _set(world, max_submissions=None)  # null lifts the limit
    assert post(world).status_code == 202


def test_too_soon_after_the_last_submission_is_429_with_retry_after(world: World) -> None:
    _set(world, min_interval_seconds=600)
    assert post(world).status_code == 202
    before = what_is_stored(world)
    answer = post(world)
    assert answer.status_code == 429
    assert 590 <= int(answer.headers["Retry-After"]) <= 600
    assert "submit again in" in answer.json()["detail"]
    assert what_is_stored(world) == before
    newcomer = {"email": "newcomer@example.org", "name": "Newcomer", "role": "student"}
    members = f"/api/v1/courses/{world.course}/members"
    assert world.client.post(members, json=newcomer, headers=world.headers["instructor"]).status_code == 201
    # The interval is each student's own.
    assert post(world, "instructor", data={"student": "newcomer@example.org"}).status_code == 202


def test_a_submission_after_the_due_date_is_kept_and_marked_late_unless_extended(world: World) -> None:
    _set(world, due_at="2020-01-01T00:00:00Z")
    refused = post(world)  # the default late policy: none
    assert refused.status_code == 403 and "takes no late submissions" in refused.json()["detail"]
    _set(world, late_policy="per_day", penalty_per_day=0.1)
    late = post(world).json()
    assert world.client.get(late["status_url"], headers=world.headers["student"]).json()["late"] is True
    extended = world.client.post(
        f"/api/v1/assignments/{world.assignment}/extensions",
        json={"email": world.emails["student"], "due_at": "2099-01-01T00:00:00+02:00"},
        headers=world.headers["ta"],
    )
    assert extended.status_code == 201 and extended.json()["due_at"] == "2098-12-31T22:00:00Z"
    on_time = post(world).json()
    assert world.client.get(on_time["status_url"], headers=world.headers["student"]).json()["late"] is False


def test_three_infrastructure_failures_show_the_submission_failed_to_staff_without_a_grade(
    world: World,
) -> None:
    submission = post(world).json()["id"]
    with world.app.state.sessions.begin() as session:
        for attempt in range(queue.MAX_INFRASTRUCTURE_FAILURES):
            later = utcnow() + timedelta(minutes=attempt + 1)  # past each retry's delay
            claim = queue.claim(session, worker="test", lease=timedelta(minutes=5), now=later)
            assert claim is not None and claim.submission_id == submission
            queue.fail(session, claim, error="SandboxUnavailable: the engine is down", now=later)
    listed = world.client.get(submissions_url(world), headers=world.headers["instructor"]).json()
    (failed,) = [item for item in listed if item["id"] == submission]
    assert (failed["status"], failed["score"]) == ("failed", None)
    report = world.client.get(f"/api/v1/submissions/{submission}/report", headers=world.headers["student"])
    assert report.status_code == 409 and "failed three times" in report.json()["detail"]


def test_a_file_name_too_long_for_the_file_system_is_refused_not_a_crash(world: World) -> None:
    before = what_is_stored(world)
    answer = post(world, files=[("files", ("é" * 200 + ".py", LAYERS))])  # 200 characters, 403 bytes
    assert answer.status_code == 422 and "not usable" in answer.json()["detail"]
    assert what_is_stored(world) == before


def test_an_idempotency_key_reused_for_another_student_is_a_conflict_not_a_dropped_hand_in(
    world: World,
) -> None:
    first = post(world, "ta", key="k1", data={"student": world.emails["student"]})
    assert first.status_code == 202
    before = what_is_stored(world)
    other = post(world, "ta", key="k1", data={"student": world.emails["owner"]})
    assert other.status_code == 409 and "Idempotency-Key was used for another" in other.json()["detail"]
    assert what_is_stored(world) == before


def test_a_token_without_grades_read_sees_statuses_but_no_scores(world: World) -> None:
    url = f"/api/v1/submissions/{world.submission}"
    seen = world.client.get(url, headers=world.headers["token:submissions:read"]).json()
    assert (seen["status"], seen["score"], seen["max_score"]) == ("graded", None, None)
    listed = world.client.get(submissions_url(world), headers=world.headers["token:submissions:read"]).json()
    assert [(item["score"], item["max_score"]) for item in listed] == [(None, None)]
    staff = world.client.get(url, headers=world.headers["ta"]).json()
    assert (staff["score"], staff["max_score"]) == (3.0, 5.0)


def test_an_assignment_cannot_lose_its_title(world: World) -> None:
    answer = world.client.patch(
        f"/api/v1/assignments/{world.assignment}", json={"title": "  "}, headers=world.headers["instructor"]
    )
    assert answer.status_code == 422 and "title" in answer.json()["detail"]


def test_two_courses_with_one_slug_at_the_same_moment_give_201_and_409_never_500(world: World) -> None:
    def create(_: int) -> int:
        body = {"slug": "same-moment", "title": "Twice"}
        return int(
            world.client.post("/api/v1/courses", json=body, headers=world.headers["admin"]).status_code
        )

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = sorted(pool.map(create, range(6)))
    assert statuses == [201] + [409] * 5


@pytest.mark.parametrize(
    "due_at", ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01", "2027-02-30T00:00Z"]
)
def test_a_due_date_out_of_range_is_422_not_a_crash(world: World, due_at: str) -> None:
    answer = world.client.post(
        f"/api/v1/assignments/{world.assignment}/extensions",
        json={"email": world.emails["student"], "due_at": due_at},
        headers=world.headers["instructor"],
    )
    assert answer.status_code == 422 and answer.json()["detail"].startswith("due_at:")
