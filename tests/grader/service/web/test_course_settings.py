"""The course settings pages (/courses/{id}/settings...), on both databases, through a browser's requests:
signed in at /login, every form with its CSRF token. Each change is made through the pages and read back
through the REST API (the same domain services); a secret is shown once; bad input is shown with its
error and what was typed; TAs look but do not change what the API keeps for instructors; students and
other courses' people are refused; no POST is taken without its CSRF token."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import event, select

from grader.service.accounts.invites import invited_user
from grader.service.accounts.models import ApiToken, User
from grader.service.accounts.passwords import hash_password
from grader.service.accounts.service import create_api_token
from grader.service.courses.models import Membership, Role
from grader.service.web.pages.course_settings import Flash, ShownOnce, moment, open_flash, seal_flash
from grader.service.webhooks.models import DeliveryStatus, Webhook, WebhookAttempt, WebhookDelivery

# The API's world (its app, people and tokens): the pages act on it, the API reads it back.
from tests.grader.service.api.conftest import PASSWORD, SECRET, World, api_settings, client, world  # noqa: F401

ROSTERS = Path(__file__).resolve().parents[3] / "fixtures" / "rosters"
PUBLIC_URL = "https://93.184.216.34/grader-hook"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SHOWN = re.compile(r'id="shown-once-value"[^>]*value="([^"]+)"')


# ---- a browser ------------------------------------------------------------------------------------------


@pytest.fixture
def people(world: World) -> World:  # noqa: F811
    """The world, with passwords for the people who sign in at /login."""
    hashed = hash_password(PASSWORD)
    with world.app.state.sessions.begin() as session:
        for role in ("instructor", "ta", "student", "other_instructor", "admin"):
            user = session.scalar(select(User).where(User.email == world.emails[role]))
            assert user is not None
            user.password_hash = hashed
    return world


def signed_in(site: World, role: str) -> TestClient:
    """A browser of its own (its own cookies) signed in as `role` through the login form."""
    browser = TestClient(site.app, follow_redirects=False)
    login = browser.get("/login")
    token = CSRF.search(login.text)
    assert login.status_code == 200 and token is not None
    answer = browser.post(
        "/login",
        data={"email": site.emails[role], "password": PASSWORD, "csrf_token": token.group(1), "next": "/"},
    )
    assert answer.status_code == 303, answer.text
    return browser


def submit(browser: TestClient, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Response:
    """POST a form as the page does: with the CSRF token the page put in it (the browser's cookie's)."""
    token = browser.cookies.get("grader_csrf")
    assert token, "open a page first: it sets the CSRF cookie"
    return browser.post(path, data={"csrf_token": token, **(data or {})}, **kwargs)


def follow(browser: TestClient, answer: Response) -> Response:
    assert answer.status_code == 303, answer.text
    page = browser.get(answer.headers["location"])
    assert page.status_code == 200, page.text
    return page


def shown_once(page: Response) -> str:
    found = SHOWN.search(page.text)
    assert found is not None, "no secret on the page"
    return html.unescape(found.group(1))


def api(site: World, path: str, role: str = "instructor") -> Any:
    answer = site.client.get(path, headers=site.headers[role])
    assert answer.status_code == 200, answer.text
    return answer.json()


def settings_path(site: World, rest: str = "") -> str:
    return f"/courses/{site.course}/settings{rest}"


def assignment_form(**changes: str) -> dict[str, str]:
    form = {
        "title": "Assignment 3",
        "slug": "a3",
        "catalog": "cs231n-a2-fc",
        "due_at": "2030-06-01T23:59",
        "due_at_utc_offset": "120",  # the viewer is at UTC+2 on that day
        "late_policy": "none",
        "penalty_percent": "0",
        "max_late_days": "",
        "counting": "best",
        "max_submissions": "",
        "min_interval_minutes": "",
        "hidden_results": "after_due",
        "canvas_assignment_id": "",
    }
    return {**form, **changes}


def field_value(page: Response, form: str, name: str) -> str:
    """The value the page's form (its id) has in the field."""
    found = re.search(rf'id="{form}-{name}"[^>]*value="([^"]*)"', page.text)
    assert found is not None, f"no field {name} in the form {form}"
    return html.unescape(found.group(1))


# ---- assignments ----------------------------------------------------------------------------------------


def test_an_instructor_creates_an_assignment_then_changes_its_due_date_and_late_policy(people: World) -> None:
    browser = signed_in(people, "instructor")
    page = browser.get(settings_path(people))
    assert page.status_code == 200 and "Assignment 2" in page.text
    assert "no-store" in page.headers["cache-control"]

    answer = submit(browser, settings_path(people, "/assignments"), assignment_form())
    page = follow(browser, answer)
    assert "The assignment Assignment 3 (a3) was created." in page.text
    (made,) = [a for a in api(people, f"/api/v1/courses/{people.course}/assignments") if a["slug"] == "a3"]
    assert datetime.fromisoformat(made["due_at"]) == datetime(2030, 6, 1, 21, 59, tzinfo=UTC)
    assert made["late_policy"] == "none" and made["max_submissions"] is None
    again = browser.get(settings_path(people))
    assert "was created" not in again.text  # a notice is shown once

    edit = settings_path(people, f"/assignments/{made['id']}")
    page = browser.get(edit)
    assert page.status_code == 200
    assert (
        field_value(page, "assignment", "due_at") == "2030-06-01T21:59"
    )  # UTC, until settings.js shows it locally
    changes = assignment_form(
        due_at="2030-06-03T12:00:30",
        due_at_utc_offset="-420",
        late_policy="per_day",
        penalty_percent="12.5",
        max_late_days="3",
        counting="last",
        max_submissions="5",
        min_interval_minutes="10",
        hidden_results="always",
        canvas_assignment_id="48213",
    )
    page = follow(browser, submit(browser, edit, changes))
    assert "The settings of Assignment 3 were saved." in page.text
    changed = api(people, f"/api/v1/assignments/{made['id']}")
    assert datetime.fromisoformat(changed["due_at"]) == datetime(2030, 6, 3, 19, 0, 30, tzinfo=UTC)
    assert (changed["late_policy"], changed["penalty_per_day"], changed["max_late_days"]) == (
        "per_day",
        0.125,
        3,
    )
    assert (changed["counting"], changed["max_submissions"], changed["min_interval_seconds"]) == (
        "last",
        5,
        600,
    )
    assert (changed["hidden_results"], changed["canvas_assignment_id"]) == ("always", "48213")
    assert field_value(page, "assignment", "penalty_percent") == "12.5"
    assert field_value(page, "assignment", "due_at") == "2030-06-03T19:00:30"

    # Emptied limits are cleared, as null clears them in the API.
    cleared = {**changes, "max_submissions": "", "max_late_days": "", "canvas_assignment_id": ""}
    follow(browser, submit(browser, edit, cleared))
    changed = api(people, f"/api/v1/assignments/{made['id']}")
    assert (changed["max_submissions"], changed["max_late_days"], changed["canvas_assignment_id"]) == (
        None,
    ) * 3


@pytest.mark.parametrize(
    ("changes", "says", "field"),
    [
        ({"slug": "Bad Slug!"}, "&#39;Bad Slug!&#39; is not a slug", "slug"),
        ({"penalty_percent": "-5"}, "Penalty per day: between 0 and 100", "penalty_percent"),
        ({"max_late_days": "three"}, "Most late days: Input should be a valid integer", "max_late_days"),
        ({"due_at": ""}, "Due date: enter a date and a time", "due_at"),
        ({"due_at": "tomorrow"}, "Due date: &#39;tomorrow&#39; is not a date and time", "due_at"),
        ({"canvas_assignment_id": "abc"}, "Canvas assignment id: use digits only", "canvas_assignment_id"),
        ({"catalog": "cs999"}, "Unknown catalog &#39;cs999&#39;", "catalog"),
        ({"slug": "a2"}, "This course has an assignment with the slug &#39;a2&#39; already", "slug"),
    ],
)
def test_bad_input_shows_its_error_keeps_the_form_values_and_changes_nothing(
    people: World, changes: dict[str, str], says: str, field: str
) -> None:
    browser = signed_in(people, "instructor")
    browser.get(settings_path(people))
    before = api(people, f"/api/v1/courses/{people.course}/assignments")
    form = assignment_form(title="Kept title", **changes)

    answer = submit(browser, settings_path(people, "/assignments"), form)

    assert answer.status_code in (409, 422)
    assert says in answer.text
    assert 'role="alert"' in answer.text
    assert field_value(answer, "new-assignment", "title") == "Kept title"
    if field not in ("catalog",):
        assert field_value(answer, "new-assignment", field) == form[field]
    marked = rf'id="new-assignment-{field}"[^>]*aria-invalid="true"'
    assert re.search(marked, answer.text), "the field is marked"
    assert api(people, f"/api/v1/courses/{people.course}/assignments") == before


def test_a_change_with_bad_input_keeps_the_assignment_as_it_was(people: World) -> None:
    browser = signed_in(people, "instructor")
    edit = settings_path(people, f"/assignments/{people.assignment}")
    browser.get(edit)
    before = api(people, f"/api/v1/assignments/{people.assignment}")

    answer = submit(browser, edit, assignment_form(slug="a2", title="Renamed", penalty_percent="-1"))

    assert answer.status_code == 422 and "Penalty per day: between 0 and 100" in answer.text
    assert field_value(answer, "assignment", "title") == "Renamed"
    assert field_value(answer, "assignment", "penalty_percent") == "-1"
    assert api(people, f"/api/v1/assignments/{people.assignment}") == before


def test_the_course_details_are_changed_and_a_bad_login_pattern_is_refused(people: World) -> None:
    browser = signed_in(people, "instructor")
    browser.get(settings_path(people))
    answer = submit(
        browser, settings_path(people, "/course"), {"title": "CS231n", "login_email_pattern": "{login}"}
    )
    assert answer.status_code == 422 and "does not make an email address" in answer.text
    assert field_value(answer, "course", "login_email_pattern") == "{login}"

    data = {"title": "CS231n, spring", "login_email_pattern": "{login}@stanford.edu"}
    page = follow(browser, submit(browser, settings_path(people, "/course"), data))
    assert "The course&#39;s details were saved." in page.text
    (course,) = [c for c in api(people, "/api/v1/courses") if c["id"] == people.course]
    assert course["title"] == "CS231n, spring" and course["login_email_pattern"] == "{login}@stanford.edu"


# ---- members and rosters --------------------------------------------------------------------------------


def members(site: World) -> dict[str, Any]:
    return {member["email"]: member for member in api(site, f"/api/v1/courses/{site.course}/members")}


def upload_roster(browser: TestClient, site: World, name: str, **flags: str) -> Response:
    content = (ROSTERS / name).read_bytes()
    return submit(browser, settings_path(site, "/roster"), flags, files={"file": (name, content, "text/csv")})


def test_a_canvas_roster_is_imported_after_a_dry_run_that_changes_nothing(people: World) -> None:
    browser = signed_in(people, "instructor")
    browser.get(settings_path(people, "/members"))
    data = {"title": "CS231n", "login_email_pattern": "{login}@stanford.edu"}
    follow(browser, submit(browser, settings_path(people, "/course"), data))
    before = members(people)

    dry = upload_roster(browser, people, "canvas_gradebook.csv", dry_run="on")

    assert dry.status_code == 200, dry.text
    assert "Dry run: nothing was changed." in dry.text
    assert "read as a canvas roster" in dry.text
    for email in ("jdoe@stanford.edu", "zoe.nunez@stanford.edu", "xwang@stanford.edu"):
        assert email in dry.text
    assert "Canvas&#39;s test student" in dry.text and '<td class="num">7</td>' in dry.text  # skipped
    assert "Would be added" in dry.text
    assert members(people) == before

    real = upload_roster(browser, people, "canvas_gradebook.csv")

    assert real.status_code == 200, real.text
    assert "The roster was imported: 3 added, 0 updated, 0 unchanged." in real.text
    after = members(people)
    assert set(after) - set(before) == {"jdoe@stanford.edu", "zoe.nunez@stanford.edu", "xwang@stanford.edu"}
    assert after["jdoe@stanford.edu"]["lms_id"] == "1001" and after["jdoe@stanford.edu"]["name"] == "Jane Doe"
    listed = browser.get(settings_path(people, "/members"))
    assert "Jane Doe" in listed.text and "CS231N-01" in listed.text

    again = upload_roster(browser, people, "canvas_gradebook.csv")
    assert "0 added, 0 updated, 3 unchanged" in again.text  # a reload that posts again changes nothing


def test_a_bad_roster_shows_every_error_with_its_line_and_changes_nothing(people: World) -> None:
    browser = signed_in(people, "instructor")
    browser.get(settings_path(people, "/members"))
    content = (ROSTERS / "plain_with_errors.csv").read_bytes()
    expected = people.client.post(
        f"/api/v1/courses/{people.course}/roster",
        params={"dry_run": "true"},
        files={"file": ("roster.csv", content, "text/csv")},
        headers=people.headers["instructor"],
    ).json()["errors"]
    assert len(expected) >= 3
    before = members(people)

    answer = upload_roster(browser, people, "plain_with_errors.csv")

    assert answer.status_code == 422
    assert f"Nothing was imported: {len(expected)} rows cannot be imported" in answer.text
    errors_table = html.unescape(answer.text.split('id="errors-heading"')[1].split("</table>")[0])
    for problem in expected:
        assert f'<td class="num">{problem["line"]}</td><td>{problem["reason"]}</td>' in errors_table
    assert members(people) == before

    partial = upload_roster(browser, people, "plain_with_errors.csv", partial="on")
    assert partial.status_code == 200 and "The roster was imported" in partial.text
    assert "alice@example.org" in members(people)


def test_a_file_that_is_no_roster_is_refused_on_the_members_page(people: World) -> None:
    browser = signed_in(people, "instructor")
    browser.get(settings_path(people, "/members"))
    answer = upload_roster(browser, people, "latin1.csv", dry_run="on")
    assert answer.status_code == 422
    assert "the file is not utf-8" in answer.text.lower()
    assert 'id="roster-file"' in answer.text and 'aria-invalid="true"' in answer.text
    assert re.search(r'id="roster-dry_run"[^>]*checked', answer.text), "the ticked box stays ticked"

    missing = submit(browser, settings_path(people, "/roster"), {"dry_run": "on"})
    assert missing.status_code == 422 and "Roster file: choose the CSV file to import" in missing.text


def test_a_member_is_added_and_given_a_password_link_shown_once(people: World) -> None:
    browser = signed_in(people, "instructor")
    browser.get(settings_path(people, "/members"))
    data = {"email": "new.person@example.org", "name": "New Person", "role": "ta", "student_number": ""}
    page = follow(browser, submit(browser, settings_path(people, "/members"), data))
    assert "New Person (new.person@example.org) was added as a TA." in page.text
    new = members(people)["new.person@example.org"]
    assert new["role"] == "ta" and new["student_number"] is None

    invite = settings_path(people, f"/members/{new['user_id']}/invite")
    assert f'action="{invite}"' in page.text
    page = follow(browser, submit(browser, invite))
    link = shown_once(page)
    assert link.startswith("http://localhost:8000/invite/")
    with people.session() as session:
        assert invited_user(session, link.rsplit("/", 1)[1], secret=SECRET).email == "new.person@example.org"
    assert link not in browser.get(settings_path(people, "/members")).text  # shown once

    bad = submit(browser, settings_path(people, "/members"), {**data, "email": "not an email", "name": "X"})
    assert bad.status_code == 422 and "is not an email address" in bad.text
    assert field_value(bad, "member", "email") == "not an email"

    with people.session() as session:
        instructor = session.scalar(select(User).where(User.email == people.emails["instructor"]))
        assert instructor is not None
    refused = submit(browser, settings_path(people, f"/members/{instructor.id}/invite"))
    assert refused.status_code == 409 and "has a password already" in refused.text


def user_id(site: World, role: str) -> str:
    with site.session() as session:
        found = session.scalar(select(User.id).where(User.email == site.emails[role]))
    assert found is not None
    return found


def test_a_member_is_removed_after_a_confirmation_but_never_oneself_nor_the_last_instructor(
    people: World,
) -> None:
    browser = signed_in(people, "instructor")
    page = browser.get(settings_path(people, "/members"))
    remove_owner = settings_path(people, f"/members/{user_id(people, 'owner')}/remove")
    assert f'action="{remove_owner}"' in page.text
    assert 'data-confirm="Remove Owner (owner@example.org) from the course?' in page.text
    assert f"/members/{user_id(people, 'instructor')}/remove" not in page.text  # one's own row: no button

    no_token = browser.post(remove_owner)
    assert no_token.status_code == 403 and "owner@example.org" in members(people)
    removed = follow(
        browser, submit(browser, settings_path(people, f"/members/{user_id(people, 'owner')}/remove"))
    )
    assert "Owner (owner@example.org) was removed from the course." in removed.text
    assert "owner@example.org" not in members(people)
    again = submit(browser, remove_owner)
    assert again.status_code == 404

    mine = submit(browser, settings_path(people, f"/members/{user_id(people, 'instructor')}/remove"))
    assert mine.status_code == 409 and "you cannot remove yourself" in mine.text
    admin = signed_in(people, "admin")
    admin.get(settings_path(people, "/members"))
    last = submit(admin, settings_path(people, f"/members/{user_id(people, 'instructor')}/remove"))
    assert last.status_code == 409 and "the course&#39;s last instructor" in last.text
    assert "instructor@example.org" in members(people)


def test_removing_someone_who_made_a_token_says_it_keeps_working(people: World) -> None:
    with people.app.state.sessions.begin() as session:
        create_api_token(
            session,
            course_id=people.course,
            name="Canvas",
            scopes=["grades:read"],
            created_by_id=user_id(people, "ta"),
        )
    browser = signed_in(people, "instructor")
    browser.get(settings_path(people, "/members"))
    page = follow(browser, submit(browser, settings_path(people, f"/members/{user_id(people, 'ta')}/remove")))
    assert "They made 1 API token of the course, which keep working" in html.unescape(page.text)
    browser.get(settings_path(people, "/members"))
    page = follow(
        browser, submit(browser, settings_path(people, f"/members/{user_id(people, 'student')}/remove"))
    )
    assert "Student (student@example.org) was removed" in page.text and "They made" not in page.text


def test_the_member_list_of_a_large_course_takes_a_few_queries(people: World) -> None:
    with people.app.state.sessions.begin() as session:
        users = [
            User(email=f"s{n}@example.org", email_key=f"s{n}@example.org", name=f"Student {n}")
            for n in range(500)
        ]
        session.add_all(users)
        session.flush()
        session.add_all(Membership(course_id=people.course, user_id=u.id, role=Role.student) for u in users)
    browser = signed_in(people, "instructor")
    statements: list[str] = []
    engine = people.app.state.sessions.kw["bind"]

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        page = browser.get(settings_path(people, "/members"))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert page.status_code == 200 and "Student 499" in page.text
    assert page.text.count("Password link for") >= 500
    assert len(statements) <= 8, statements


# ---- API tokens -----------------------------------------------------------------------------------------


def test_a_token_is_created_shown_once_and_refused_by_the_api_once_revoked(people: World) -> None:
    browser = signed_in(people, "instructor")
    browser.get(settings_path(people, "/tokens"))

    page = follow(
        browser,
        submit(browser, settings_path(people, "/tokens"), {"name": "Canvas", "scopes": ["grades:read"]}),
    )

    assert "The API token Canvas was created (grades:read)." in page.text
    secret = shown_once(page)
    assert secret.startswith("gt_")
    grades = people.client.get(
        f"/api/v1/assignments/{people.assignment}/grades", headers={"Authorization": f"Bearer {secret}"}
    )
    assert grades.status_code == 200
    listed = browser.get(settings_path(people, "/tokens"))
    assert secret not in listed.text and "Canvas" in listed.text  # never shown again

    with people.session() as session:
        token = session.scalar(select(ApiToken).where(ApiToken.name == "Canvas"))
        assert token is not None
    page = follow(browser, submit(browser, settings_path(people, f"/tokens/{token.id}/revoke")))
    assert "The API token Canvas was revoked" in page.text and "revoked" in page.text
    grades = people.client.get(
        f"/api/v1/assignments/{people.assignment}/grades", headers={"Authorization": f"Bearer {secret}"}
    )
    assert grades.status_code == 401 and "revoked" in grades.json()["detail"]


def test_a_token_needs_a_name_and_a_scope(people: World) -> None:
    browser = signed_in(people, "instructor")
    browser.get(settings_path(people, "/tokens"))
    answer = submit(browser, settings_path(people, "/tokens"), {"name": "Nameless scopes"})
    assert answer.status_code == 422 and "Scopes: choose at least one" in answer.text
    assert field_value(answer, "token", "name") == "Nameless scopes"
    answer = submit(browser, settings_path(people, "/tokens"), {"name": "", "scopes": ["grades:read"]})
    assert answer.status_code == 422 and "Token name:" in answer.text
    assert re.search(r'value="grades:read"\s+checked', answer.text), "the ticked scope stays ticked"
    with people.session() as session:
        assert session.scalar(select(ApiToken).where(ApiToken.name == "Nameless scopes")) is None


# ---- webhooks -------------------------------------------------------------------------------------------


def test_a_webhook_is_registered_with_its_secret_shown_once_and_its_delivery_log_redelivers(
    people: World,
) -> None:
    browser = signed_in(people, "instructor")
    edit = settings_path(people, f"/assignments/{people.assignment}")
    browser.get(edit)

    refused = submit(browser, f"{edit}/webhooks", {"url": "http://127.0.0.1:8000/hook"})
    assert refused.status_code == 422 and "loopback" in refused.text
    assert field_value(refused, "webhook", "url") == "http://127.0.0.1:8000/hook"

    page = follow(browser, submit(browser, f"{edit}/webhooks", {"url": PUBLIC_URL}))
    secret = shown_once(page)
    assert secret.startswith("whsec_") and f"The webhook to {PUBLIC_URL} was registered." in page.text
    (webhook,) = api(people, f"/api/v1/assignments/{people.assignment}/webhooks")
    assert webhook["url"] == PUBLIC_URL
    assert secret not in browser.get(edit).text

    log_path = settings_path(people, f"/webhooks/{webhook['id']}")
    assert "Nothing has been sent yet" in browser.get(log_path).text
    # A new due date changes the graded student's final grade: one delivery, as through the API.
    follow(
        browser,
        submit(browser, edit, assignment_form(title="Assignment 2", slug="a2", due_at="2031-01-01T00:00")),
    )
    with people.session() as session:
        delivery = session.scalar(select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook["id"]))
        assert delivery is not None
        delivery.status, delivery.attempts = DeliveryStatus.failed, 1
        delivery.finished_at = datetime.now(UTC)
        session.add(
            WebhookAttempt(
                delivery_id=delivery.id,
                number=1,
                started_at=datetime.now(UTC) - timedelta(minutes=1),
                seconds=0.25,
                status_code=500,
                error=None,
                response="receiver is down",
            )
        )
        session.commit()
        delivery_id = delivery.id

    log = browser.get(log_path)
    assert log.status_code == 200
    assert "grade.updated" in log.text and people.emails["owner"] in log.text
    assert "HTTP 500" in log.text and "receiver is down" in log.text and "failed" in log.text
    page = follow(browser, submit(browser, f"{log_path}/deliveries/{delivery_id}/redeliver"))
    assert "The delivery is sent again within seconds" in page.text
    with people.session() as session:
        again = session.get(WebhookDelivery, delivery_id)
        assert again is not None and again.status is DeliveryStatus.pending

    page = follow(browser, submit(browser, settings_path(people, f"/webhooks/{webhook['id']}/delete")))
    assert "was deleted" in page.text
    assert api(people, f"/api/v1/assignments/{people.assignment}/webhooks") == []
    assert browser.get(log_path).status_code == 404


# ---- who may ----------------------------------------------------------------------------------------------


def a_webhook(site: World) -> str:
    with site.app.state.sessions.begin() as session:
        webhook = Webhook(assignment_id=site.assignment, url=PUBLIC_URL, secret="whsec_x", created_by="test")
        session.add(webhook)
        session.flush()
        return webhook.id


def test_a_ta_looks_at_the_settings_but_changes_only_what_the_api_lets_a_ta_change(people: World) -> None:
    webhook_id = a_webhook(people)
    browser = signed_in(people, "ta")
    for rest in ("", "/members", "/tokens", f"/assignments/{people.assignment}"):
        page = browser.get(settings_path(people, rest))
        assert page.status_code == 200, rest
        assert "only the course's instructors can change them" in page.text
        assert 'type="submit">Create' not in page.text and "Save the" not in page.text
    assignment_page = browser.get(settings_path(people, f"/assignments/{people.assignment}"))
    assert PUBLIC_URL not in assignment_page.text  # webhooks are the instructors' (as in the API)
    assert browser.get(settings_path(people, f"/webhooks/{webhook_id}")).status_code == 403

    before = api(people, f"/api/v1/courses/{people.course}/assignments")
    posts = {
        "/course": {"title": "Mine now", "login_email_pattern": ""},
        "/assignments": assignment_form(),
        f"/assignments/{people.assignment}": assignment_form(slug="a2"),
        f"/assignments/{people.assignment}/webhooks": {"url": PUBLIC_URL},
        "/members": {"email": "x@example.org", "name": "X", "role": "instructor"},
        "/tokens": {"name": "mine", "scopes": ["grades:read"]},
        f"/webhooks/{webhook_id}/delete": {},
        f"/members/{user_id(people, 'owner')}/remove": {},
    }
    for rest, data in posts.items():
        answer = submit(browser, settings_path(people, rest), data)
        assert answer.status_code == 403, rest
        assert "only the course&#39;s instructors may do this" in answer.text
    roster = upload_roster(browser, people, "plain.csv")
    assert roster.status_code == 403
    assert api(people, f"/api/v1/courses/{people.course}/assignments") == before
    assert "x@example.org" not in members(people) and "owner@example.org" in members(people)
    assert "/remove" not in browser.get(settings_path(people, "/members")).text


def test_students_are_refused_and_other_courses_people_find_nothing(people: World) -> None:
    student = signed_in(people, "student")
    for rest in ("", "/members", "/tokens", f"/assignments/{people.assignment}"):
        assert student.get(settings_path(people, rest)).status_code == 403, rest
    assert submit(student, settings_path(people, "/assignments"), assignment_form()).status_code == 403

    stranger = signed_in(people, "other_instructor")
    assert stranger.get(settings_path(people)).status_code == 404
    assert (
        stranger.get(f"/courses/{people.other_course}/settings/assignments/{people.assignment}").status_code
        == 404
    )

    anonymous = TestClient(people.app, follow_redirects=False)
    answer = anonymous.get(settings_path(people, "/members"))
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")

    admin = signed_in(people, "admin")
    assert "Create the assignment" in admin.get(settings_path(people)).text


def test_a_post_without_its_csrf_token_is_refused(people: World) -> None:
    browser = signed_in(people, "instructor")
    browser.get(settings_path(people))
    before = api(people, f"/api/v1/courses/{people.course}/assignments")
    for token in (None, "forged.token"):
        data = assignment_form() if token is None else {**assignment_form(), "csrf_token": token}
        answer = browser.post(settings_path(people, "/assignments"), data=data)
        assert answer.status_code == 403 and "this form has expired" in answer.text
    answer = browser.post(settings_path(people, "/tokens"), data={"name": "x", "scopes": ["grades:read"]})
    assert answer.status_code == 403
    assert api(people, f"/api/v1/courses/{people.course}/assignments") == before


# ---- the pieces ------------------------------------------------------------------------------------------


def test_a_flash_is_the_viewers_own_and_short_lived() -> None:
    flash = Flash(["saved"], ShownOnce("The API token x", "gt_secret", "copy it"))
    sealed = seal_flash(flash, user_id="u1", secret=SECRET, now=1000)
    assert open_flash(sealed, user_id="u1", secret=SECRET, now=1010) == flash
    assert open_flash(sealed, user_id="u2", secret=SECRET, now=1010) is None  # another person's browser
    assert open_flash(sealed, user_id="u1", secret=SECRET, now=1000 + 3600) is None
    assert open_flash(sealed, user_id="u1", secret="another secret", now=1010) is None
    body, _, mac = sealed.partition(".")
    assert open_flash(body[:-2] + "xx." + mac, user_id="u1", secret=SECRET, now=1010) is None


def test_a_local_time_becomes_utc_with_the_offset_of_its_own_date() -> None:
    assert moment("2030-01-15T09:30", "60", label="Due", name="due") == datetime(
        2030, 1, 15, 8, 30, tzinfo=UTC
    )
    assert moment("2030-07-15T09:30", "-420", label="Due", name="due") == datetime(
        2030, 7, 15, 16, 30, tzinfo=UTC
    )
    assert moment("2030-07-15T09:30", "", label="Due", name="due") == datetime(2030, 7, 15, 9, 30, tzinfo=UTC)
    with pytest.raises(Exception, match="out of range"):
        moment("2030-07-15T09:30", "5000", label="Due", name="due")


def test_the_addresses_forms_post_to_lead_to_their_pages(people: World) -> None:
    browser = signed_in(people, "instructor")
    for rest, page in [
        ("/assignments", ""),
        ("/course", ""),
        ("/roster", "/members"),
        (f"/assignments/{people.assignment}/webhooks", f"/assignments/{people.assignment}#webhooks"),
    ]:
        answer = browser.get(settings_path(people, rest))
        assert answer.status_code == 303 and answer.headers["location"] == settings_path(people, page)
