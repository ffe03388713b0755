"""A student's journey in Chromium against a real `grader serve` grading in Docker: log in, hand in a
correct submission and watch it grade to full marks, hand in a buggy one and read its diagnosis, see only
the checks the assignment shows, never another student's work; and the pages' CSRF refusal."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from grader import EXAMPLE_SUBMISSION
from tests.fixtures.submissions import buggy
from tests.web.harness import BrowserLog, LiveService, log_in, screenshot

GRADED = ("layers.py", "fc_net.py", "optim.py")
GRADING_MS = 180_000  # the first grading in a fresh container pool, on a busy machine


def hand_in(page: Page, live: LiveService, folder: Path, shot: str | None = None) -> str:
    """Upload the folder's graded files from the assignment page; the submission page's path."""
    page.goto(f"/assignments/{live.assignment_id}")
    page.get_by_label("Files").set_input_files([str(folder / name) for name in GRADED])
    expect(page.locator("#upload-check")).to_contain_text("Found: layers.py, fc_net.py, optim.py")
    if shot:
        screenshot(page, shot)
    page.get_by_role("button", name="Submit").click()
    page.wait_for_url(re.compile(r"/submissions/[0-9a-f]+$"))
    return page.url.split(page.url.split("/submissions/")[0], 1)[1]


def wait_for_the_grade(page: Page) -> tuple[float, float]:
    score = page.locator("#score")
    expect(score).to_be_visible(timeout=GRADING_MS)
    got, most = (float(part) for part in score.inner_text().split(" / "))
    return got, most


def test_a_student_hands_in_correct_code_watches_it_grade_and_gets_full_marks(
    page: Page, live_service: LiveService, browser_log: BrowserLog
) -> None:
    student = live_service.students[0]
    log_in(page, student)
    screenshot(page, "home-student")
    expect(page.get_by_role("link", name="Assignment 2")).to_be_visible()
    hand_in(page, live_service, EXAMPLE_SUBMISSION, shot="assignment-student")
    expect(page.locator("#live-status")).to_contain_text(re.compile("Waiting|Grading|Graded"))
    screenshot(page, "submission-live")
    got, most = wait_for_the_grade(page)
    assert got == most > 0
    expect(page.locator("#live-status")).to_have_text("Graded.")
    # Before the due date the hidden checks are neither shown nor counted, and the page says so.
    expect(page.get_by_text("hidden checks are not shown here")).to_be_visible()
    assert page.locator(".flag", has_text="hidden").count() == 0
    assert page.locator("td.status-failed").count() == 0
    screenshot(page, "submission-full-marks")
    assert browser_log.foreign_requests(live_service.base_url) == []
    assert browser_log.console_errors == [] and browser_log.page_errors == []


def test_a_buggy_submission_shows_its_diagnosis_and_what_changed(
    page: Page, live_service: LiveService, browser_log: BrowserLog, tmp_path: Path
) -> None:
    student = live_service.students[0]
    log_in(page, student)
    folder = buggy.materialize("relu_backward_masks_dout", tmp_path)
    hand_in(page, live_service, folder)
    got, most = wait_for_the_grade(page)
    assert got < most
    failing = page.locator("tr", has=page.locator("th", has_text="layers.relu_backward.notebook"))
    expect(failing.locator("td.status-failed")).to_be_visible()
    diagnosis = page.locator(".diagnosis", has_text="relu_backward_masks_dout")
    expect(diagnosis).to_be_visible()
    expect(page.locator("table.errors").first).to_contain_text("Threshold")
    expect(page.get_by_role("heading", name="Since your previous attempt")).to_be_visible()
    expect(page.get_by_text("now failing").first).to_be_visible()
    screenshot(page, "submission-diagnosis")
    page.goto(f"/assignments/{live_service.assignment_id}")
    assert page.locator("tbody tr").count() >= 2  # both attempts, newest first
    assert browser_log.foreign_requests(live_service.base_url) == []


def test_another_students_submission_is_not_found(page: Page, live_service: LiveService) -> None:
    first, second = live_service.students
    with live_service.api(first) as api:
        mine = api.get(f"/api/v1/assignments/{live_service.assignment_id}/submissions").json()
    if not mine:  # run alone: hand one in through the API
        with live_service.api(first) as api:
            files = [("files", (n, (EXAMPLE_SUBMISSION / n).read_bytes())) for n in GRADED]
            mine = [
                api.post(f"/api/v1/assignments/{live_service.assignment_id}/submissions", files=files).json()
            ]
    log_in(page, second)
    answer = page.goto(f"/submissions/{mine[0]['id']}")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    screenshot(page, "error-404")


def test_a_form_posted_without_its_csrf_token_is_refused(page: Page, live_service: LiveService) -> None:
    page.goto("/login")
    page.evaluate("document.querySelector('input[name=csrf_token]').remove()")
    page.get_by_label("Email").fill(live_service.students[1].email)
    page.get_by_label("Password").fill(live_service.students[1].password)
    with page.expect_response(lambda r: r.url.endswith("/login") and r.request.method == "POST") as posted:
        page.get_by_role("button", name="Log in").click()
    assert posted.value.status == 403
    expect(page.get_by_text("did not come from this site")).to_be_visible()
    assert not any(c["name"] == "grader_session" for c in page.context.cookies())


def test_the_login_page_is_labelled_and_works_with_the_keyboard(
    page: Page, live_service: LiveService
) -> None:
    page.goto("/login")
    screenshot(page, "login")
    expect(page.get_by_label("Email")).to_be_focused()  # autofocus: the keyboard starts there
    page.keyboard.type(live_service.students[1].email)
    page.keyboard.press("Tab")
    page.keyboard.type(live_service.students[1].password)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your courses")).to_be_visible()
