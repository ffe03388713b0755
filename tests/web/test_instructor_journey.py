"""An instructor's journey in Chromium against a real `grader serve` grading in Docker: the dashboard's
histogram and mistake list after a real buggy grading, Regrade all, Grant extension and the Canvas export;
the course settings; and every input of the main pages labelled."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.fixtures.submissions import buggy
from tests.web.harness import BrowserLog, LiveService, log_in, screenshot

GRADED = ("layers.py", "fc_net.py", "optim.py")
MISTAKE = "relu_backward_masks_dout"
# Inputs a person types into or picks, each of which must have a visible label (or be a labelled control).
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter((el) => el.type !== 'hidden' && el.offsetParent !== null)
  .filter((el) => !(el.labels && el.labels.length))
  .filter((el) => !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
  .map((el) => el.outerHTML)"""


def graded_buggy_submission(live: LiveService, tmp_path: Path) -> str:
    """The second student hands in a buggy submission through the API; its id once it is graded."""
    folder = buggy.materialize(MISTAKE, tmp_path)
    with live.api(live.students[1]) as api:
        files = [("files", (name, (folder / name).read_bytes())) for name in GRADED]
        sent = api.post(f"/api/v1/assignments/{live.assignment_id}/submissions", files=files)
        assert sent.status_code == 202, sent.text
        submission_id = str(sent.json()["id"])
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            status = api.get(f"/api/v1/submissions/{submission_id}").json()["status"]
            if status in ("graded", "failed"):
                break
            time.sleep(0.5)
    assert status == "graded", live.stderr()
    return submission_id


def test_the_dashboard_shows_the_mistake_regrades_extends_and_exports(
    page: Page, live_service: LiveService, browser_log: BrowserLog, tmp_path: Path
) -> None:
    submission_id = graded_buggy_submission(live_service, tmp_path)
    log_in(page, live_service.instructor)
    screenshot(page, "home-instructor")
    page.get_by_role("link", name="Assignment 2").first.click()
    page.wait_for_url(f"**/assignments/{live_service.assignment_id}/dashboard")
    expect(
        page.get_by_role("img", name="Histogram of the final scores (after the late policy)")
    ).to_be_visible()
    mistakes = page.locator("#mistakes")
    expect(mistakes).to_contain_text(MISTAKE)
    mistakes.locator("summary").first.click()
    expect(mistakes.locator(f"a[href='/submissions/{submission_id}']")).to_be_visible()
    assert page.evaluate(UNLABELLED) == []
    screenshot(page, "dashboard")

    student = live_service.students[1]
    page.locator(f"a[data-extend='{student.email}']").click()
    page.get_by_label(f"New due date for {student.name}").fill("2031-01-15T12:00")
    page.get_by_role("button", name="Grant extension").click()
    expect(page.get_by_role("status").filter(has_text=f"{student.name} is now due")).to_be_visible()

    page.once("dialog", lambda dialog: dialog.accept())  # "Grade every student's counting submission again?"
    page.get_by_role("button", name="Regrade all").click()
    expect(page.get_by_role("status").filter(has_text="Regrade all")).to_be_visible()
    with live_service.api(live_service.instructor) as api:
        progress = api.get(f"/api/v1/assignments/{live_service.assignment_id}/regrade").json()
    assert progress["jobs"] >= 1
    page.evaluate("window.sameLoad = true")  # gone if the page were loaded again
    expect(page.locator("#regrade-progress [data-finished]")).to_be_visible(timeout=180_000)
    expect(page.get_by_role("status").filter(has_text="Regrade finished")).to_have_count(1)
    assert page.evaluate("window.sameLoad") is True
    polls = [r for r in browser_log.requests if r.startswith("GET ") and r.endswith("/dashboard/regrade")]
    assert polls, "the counts came from the page's load, not from its script"
    done = page.locator("#regrade-progress [data-count=done]").inner_text()
    failed = page.locator("#regrade-progress [data-count=failed]").inner_text()
    assert int(done) + int(failed) == progress["jobs"]

    page.get_by_label("Export format").select_option("canvas")
    with page.expect_download() as download:
        page.get_by_role("button", name="Export grades (CSV)").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text(encoding="utf-8"))))
    assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert rows[1][0].strip() == "Points Possible"
    assert {row[0] for row in rows[2:]} >= {student.name}
    assert browser_log.foreign_requests(live_service.base_url) == []
    assert browser_log.console_errors == [] and browser_log.page_errors == []


def test_the_course_settings_and_the_staff_view_of_a_submission(
    page: Page, live_service: LiveService, browser_log: BrowserLog, tmp_path: Path
) -> None:
    submission_id = graded_buggy_submission(live_service, tmp_path)
    log_in(page, live_service.instructor)
    page.goto(f"/courses/{live_service.course_id}/settings")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    assert page.evaluate(UNLABELLED) == []
    screenshot(page, "course-settings")
    page.goto(f"/courses/{live_service.course_id}/settings/members")
    assert page.evaluate(UNLABELLED) == []
    screenshot(page, "course-members")
    page.goto(f"/submissions/{submission_id}")
    expect(page.get_by_role("heading", name="For staff")).to_be_visible()
    expect(page.get_by_text("Every run")).to_be_visible()
    screenshot(page, "submission-staff")
    assert browser_log.foreign_requests(live_service.base_url) == []


def test_every_main_page_reads_well_on_a_phone(page: Page, live_service: LiveService) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    log_in(page, live_service.students[0])
    for path in ("/", f"/assignments/{live_service.assignment_id}"):
        page.goto(path)
        assert page.evaluate(UNLABELLED) == []
        wide = page.evaluate("document.documentElement.scrollWidth > window.innerWidth + 1")
        assert not wide, f"{path} scrolls sideways on a phone"
    screenshot(page, "assignment-phone")
