"""The pages a student meets, on both databases: logging in (CSRF, throttling, no open redirect), the home
page, the assignment page's hand-in (the same refusals as the API), the submission page and its live
state, and what a student may not open."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, cast

import pytest
from sqlalchemy import select

from grader import EXAMPLE_SUBMISSION
from grader.service.accounts.models import User
from grader.service.submissions.models import Submission
from tests.grader.service.api.conftest import REPORT, SECRET, World, api_settings, client, world  # noqa: F401
from tests.grader.service.web.browsing import PASSWORD, csrf_of, give_password, log_in

CHECKS = cast(list[dict[str, Any]], REPORT["checks"])


@pytest.fixture
def site(world: World) -> Iterator[World]:  # noqa: F811
    with world.app.state.sessions.begin() as session:
        for role in ("student", "owner", "instructor", "other_student"):
            give_password(session, world.emails[role])
    world.client.cookies.clear()
    yield world


def test_a_page_sends_a_stranger_to_the_login_page_and_back(site: World) -> None:
    answer = site.client.get(f"/assignments/{site.assignment}", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/login?next=%2Fassignments%2F{site.assignment}"
    form = site.client.get(answer.headers["location"])
    assert 'for="email">Email<' in form.text and 'for="password">Password<' in form.text
    assert ">Log in</button>" in form.text
    logged_in = site.client.post(
        "/login",
        data={
            "email": site.emails["student"],
            "password": PASSWORD,
            "csrf_token": csrf_of(form.text),
            "next": f"/assignments/{site.assignment}",
        },
        follow_redirects=False,
    )
    assert logged_in.status_code == 303 and logged_in.headers["location"] == f"/assignments/{site.assignment}"
    cookie = logged_in.headers["set-cookie"]
    assert "grader_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie


def test_login_refuses_a_wrong_password_a_missing_csrf_token_and_a_foreign_next(site: World) -> None:
    form = site.client.get("/login")
    token = csrf_of(form.text)
    wrong = site.client.post(
        "/login", data={"email": site.emails["student"], "password": "no", "csrf_token": token}
    )
    assert wrong.status_code == 401 and "Wrong email or password." in wrong.text
    forged = site.client.post("/login", data={"email": site.emails["student"], "password": PASSWORD})
    assert forged.status_code == 403 and "did not come from this site" in forged.text
    assert "grader_session" not in forged.headers.get("set-cookie", "")
    away = site.client.post(
        "/login",
        data={
            "email": site.emails["student"],
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/",
        },
        follow_redirects=False,
    )
    assert away.headers["location"] == "/"


def test_a_new_session_token_at_every_login(site: World) -> None:
    log_in(site.client, site.emails["student"])
    first = site.client.cookies["grader_session"]
    log_in(site.client, site.emails["student"])
    assert site.client.cookies["grader_session"] != first


def test_login_throttling_is_the_apis(site: World) -> None:
    """Failures through the API count against the page's login, and the page says when to retry."""
    for _ in range(5):
        site.client.post("/api/v1/auth/token", data={"username": site.emails["student"], "password": "no"})
    form = site.client.get("/login")
    answer = site.client.post(
        "/login",
        data={"email": site.emails["student"], "password": PASSWORD, "csrf_token": csrf_of(form.text)},
    )
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) > 0
    assert "You can try again in" in answer.text


def test_home_lists_the_courses_with_due_dates_attempts_and_score(site: World) -> None:
    log_in(site.client, site.emails["owner"])
    home = site.client.get("/")
    assert home.status_code == 200
    assert "CS231n" in home.text and "Assignment 2" in home.text and "CS682" not in home.text
    assert "1 used" in home.text
    assert "<time datetime=" in home.text and "data-remaining" in home.text
    assert (
        "2 / 2" in home.text
    )  # the hidden check is not shown before the due date: 2 of its 2 visible points


def test_pages_carry_the_security_headers_and_load_only_their_own_assets(site: World) -> None:
    log_in(site.client, site.emails["owner"])
    page = site.client.get(f"/assignments/{site.assignment}")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "same-origin"
    assert "<script>" not in page.text and "http://" not in page.text and "https://" not in page.text
    for asset in ("/static/style.css", "/static/app.js", "/static/assignment.js", "/static/submission.js"):
        assert site.client.get(asset).status_code == 200, asset


def _example_files() -> list[tuple[str, tuple[str, bytes]]]:
    return [
        ("files", (n, (EXAMPLE_SUBMISSION / n).read_bytes())) for n in ("layers.py", "fc_net.py", "optim.py")
    ]


def test_hand_in_from_the_page_queues_a_submission_and_shows_it(site: World) -> None:
    log_in(site.client, site.emails["student"])
    page = site.client.get(f"/assignments/{site.assignment}")
    assert 'for="files">Files<' in page.text and ">Submit</button>" in page.text
    rules = json.loads(page.text.split('data-rules="', 1)[1].split('"', 1)[0].replace("&#34;", '"'))
    assert rules["required"] == ["layers.py", "fc_net.py", "optim.py"]
    sent = site.client.post(
        f"/assignments/{site.assignment}/submit",
        data={"csrf_token": csrf_of(page.text)},
        files=_example_files(),
        follow_redirects=False,
    )
    assert sent.status_code == 303
    shown = site.client.get(sent.headers["location"])
    assert shown.status_code == 200 and 'data-status-now="queued"' in shown.text
    status = site.client.get(sent.headers["location"] + "/status").json()
    assert status["status"] == "queued" and status["final"] is False
    again = site.client.get(f"/assignments/{site.assignment}")
    assert sent.headers["location"] in again.text


def test_the_page_refuses_with_the_apis_words(site: World) -> None:
    log_in(site.client, site.emails["student"])
    page = site.client.get(f"/assignments/{site.assignment}")
    odd = [("files", ("notes.txt", b"hello"))]
    by_script = site.client.post(
        f"/assignments/{site.assignment}/submit",
        files=odd,
        headers={"X-CSRF-Token": csrf_of(page.text)},
    )
    by_api = site.client.post(
        f"/api/v1/assignments/{site.assignment}/submissions", files=odd, headers=site.headers["student"]
    )
    assert by_script.status_code == by_api.status_code == 422
    assert (
        by_script.json()["detail"]
        == by_api.json()["detail"]
        == "only .py files or one .zip can be uploaded, not 'notes.txt'"
    )
    assert "only .py files or one .zip can be uploaded, not {name}" in page.text  # the script's copy


def test_a_hand_in_without_csrf_token_is_refused(site: World) -> None:
    log_in(site.client, site.emails["student"])
    refused = site.client.post(f"/assignments/{site.assignment}/submit", files=_example_files())
    assert refused.status_code == 403
    with site.app.state.sessions() as session:
        count = len(
            list(session.scalars(select(Submission).where(Submission.assignment_id == site.assignment)))
        )
    assert count == 1  # the owner's only


def test_the_submission_page_shows_the_report_as_the_student_may_see_it(site: World) -> None:
    log_in(site.client, site.emails["owner"])
    page = site.client.get(f"/submissions/{site.submission}")
    assert page.status_code == 200
    assert 'id="score">2 / 2<' in page.text  # the visible check only
    visible, hidden = CHECKS
    assert visible["id"] in page.text and hidden["id"] not in page.text
    assert "Every run" not in page.text and "Seed" not in page.text
    assert site.client.get(f"/submissions/{site.submission}/status").json()["final"] is True


def test_staff_see_hidden_checks_seeds_and_every_run(site: World) -> None:
    log_in(site.client, site.emails["instructor"])
    page = site.client.get(f"/submissions/{site.submission}")
    assert page.status_code == 200
    assert CHECKS[1]["id"] in page.text and "Every run" in page.text and "Seed 1234" in page.text
    assert 'id="score">3 / 5<' in page.text


def test_another_students_submission_does_not_exist_for_a_student(site: World) -> None:
    log_in(site.client, site.emails["student"])
    for path in ("", "/status", "/events"):
        answer = site.client.get(f"/submissions/{site.submission}{path}")
        assert answer.status_code == 404, path
    assert "Not found" in site.client.get(f"/submissions/{site.submission}").text
    log_in(site.client, site.emails["other_student"])
    assert site.client.get(f"/assignments/{site.assignment}").status_code == 404


def test_events_stream_the_final_state_and_end(site: World) -> None:
    log_in(site.client, site.emails["owner"])
    with site.client.stream("GET", f"/submissions/{site.submission}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = "".join(stream.iter_text())
    assert text.startswith("event: status\ndata: ")
    assert json.loads(text.split("data: ", 1)[1])["status"] == "graded"


def test_error_pages_speak_words_and_the_api_keeps_json(site: World) -> None:
    missing = site.client.get("/no/such/page")
    assert missing.status_code == 404 and "There is no page at this address." in missing.text
    assert "Traceback" not in missing.text
    api = site.client.get("/api/v1/no/such/route")
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}


def test_an_invite_link_sets_the_password_once_and_signs_in(site: World) -> None:
    from grader.service.accounts.invites import invite_path, issue_invite
    from grader.service.accounts.models import User

    with site.app.state.sessions() as session:
        user = session.scalar(select(User).where(User.email == site.emails["ta"]))  # no password yet
        assert user is not None and user.password_hash is None
        token = issue_invite(user, secret=SECRET, lifetime=timedelta(hours=1))
    page = site.client.get(invite_path(token))
    assert page.status_code == 200 and 'for="password">New password<' in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    differing = site.client.post(
        invite_path(token),
        data={"password": "a long password", "again": "another one", "csrf_token": csrf_of(page.text)},
    )
    assert differing.status_code == 422 and "the two passwords differ" in differing.text
    done = site.client.post(
        invite_path(token),
        data={"password": "a long password", "again": "a long password", "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert done.status_code == 303 and "grader_session=" in done.headers["set-cookie"]
    assert site.client.get("/").status_code == 200
    used = site.client.get(invite_path(token))
    assert used.status_code == 403 and "staff for a new link" in used.text
    log_in(site.client, site.emails["ta"], "a long password")


def test_the_report_view_reads_thresholds_and_diagnoses_from_a_real_report() -> None:
    import gzip

    from grader.service.web.report_view import changes_since, questions_of, threshold_of
    from tests.tools.golden_reports import GOLDEN

    with gzip.open(GOLDEN, "rt") as golden:
        reports = json.load(golden)
    buggy, correct = reports["fixture/relu_backward_masks_dout"], reports["correct/correct_course/seed7"]
    views = {view.check["id"]: view for q in questions_of(buggy) for view in q.checks}
    failing = views["layers.relu_backward.notebook"]
    assert failing.lost_points and failing.diagnoses[0][0] == "relu_backward_masks_dout"
    assert "likely mistake" not in failing.message  # shown once, as the diagnosis
    assert [(e.name, e.threshold, e.over) for e in failing.errors] == [("dx", 1e-06, True)]
    assert not views["layers.affine_forward.notebook"].lost_points
    assert threshold_of("cs231n-a2-fc", "fc_net.dropout", "grad_W1") == 1e-4
    changes = changes_since(correct, buggy)
    assert "layers.relu_backward.notebook" in [c.check_id for c in changes if c.now_failing]
    assert not any(c.now_passing for c in changes)
    assert changes_since(buggy, buggy) == []


def _queries(site: World, path: str) -> int:
    from sqlalchemy import event

    engine = site.app.state.sessions.kw["bind"]
    count = 0

    def counted(*_: Any, **__: Any) -> None:
        nonlocal count
        count += 1

    event.listen(engine, "before_cursor_execute", counted)
    try:
        assert site.client.get(path).status_code == 200
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    return count


def test_the_home_and_assignment_pages_read_no_more_for_more_rows(site: World) -> None:
    """As many queries for 1 row as for 6: assignments on the home page, attempts on the assignment's."""
    from grader.service.assignments.models import Assignment
    from tests.grader.service.api.conftest import graded_submission

    log_in(site.client, site.emails["owner"])
    home, attempts = _queries(site, "/"), _queries(site, f"/assignments/{site.assignment}")
    with site.app.state.sessions.begin() as session:
        owner = session.scalar(select(User).where(User.email == site.emails["owner"]))
        first = session.get(Assignment, site.assignment)
        assert owner is not None and first is not None
        for n in range(5):
            session.add(
                Assignment(
                    course_id=site.course,
                    slug=f"more{n}",
                    title=f"More {n}",
                    catalog="cs231n-a2-fc",
                    due_at=first.due_at,
                )
            )
    for _ in range(5):
        with site.app.state.sessions.begin() as session:
            first = session.get(Assignment, site.assignment)
            owner = session.scalar(select(User).where(User.email == site.emails["owner"]))
            assert first is not None and owner is not None
            graded_submission(session, site.app, first, owner)
    page = site.client.get("/")
    assert (
        page.text.count("/assignments/") >= 6
        and "6 attempts used" in site.client.get(f"/assignments/{site.assignment}").text
    )
    assert _queries(site, "/") == home
    assert _queries(site, f"/assignments/{site.assignment}") == attempts


def test_a_running_submission_shows_its_checks_completing(site: World) -> None:
    from grader.service.grading import queue

    log_in(site.client, site.emails["student"])
    page = site.client.get(f"/assignments/{site.assignment}")
    sent = site.client.post(
        f"/assignments/{site.assignment}/submit",
        data={"csrf_token": csrf_of(page.text)},
        files=_example_files(),
        follow_redirects=False,
    )
    path = sent.headers["location"]
    queued = site.client.get(path)
    assert "number 1 in the queue" in queued.text
    with site.app.state.sessions.begin() as session:
        claim = queue.claim(session, worker="test", lease=timedelta(minutes=5))
        assert claim is not None
        progress = {"checks": ["layers.affine_forward.notebook"], "probes": [1, 40]}
        assert queue.record_progress(session, claim, json.dumps(progress))
    running = site.client.get(path)
    assert 'data-status-now="running"' in running.text
    assert "✓ layers.affine_forward.notebook" in running.text
    assert "1 of " in running.text
    state = site.client.get(path + "/status").json()
    assert state["status"] == "running" and state["questions"][0]["done"] == 1
