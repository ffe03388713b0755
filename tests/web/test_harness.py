"""The browser harness works: the live service's /docs loads in Chromium from the service alone, the seeded
people sign in, and the check that pages ask no other host catches a page that does (without the internet:
the foreign script is answered by a route, and nothing unrouted leaves the machine)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web.harness import (
    BrowserLog,
    LiveService,
    check_no_foreign_requests,
    context_options,
    foreign_urls,
    screenshot,
)

SERVICE = "http://127.0.0.1:8123"  # the controls' service: no page there is ever loaded


def test_docs_loads_in_chromium_from_the_service_alone(
    page: Page, browser_log: BrowserLog, live_service: LiveService
) -> None:
    page.goto("/docs")
    expect(page).to_have_title("grader API")
    expect(page.locator(".swagger-ui")).to_be_visible()
    page.wait_for_load_state("networkidle")  # Swagger UI has asked for the API's description

    urls = browser_log.urls()
    assert f"{live_service.base_url}/static/swagger-ui/swagger-ui-bundle.js" in urls
    assert f"{live_service.base_url}/openapi.json" in urls
    assert browser_log.foreign_requests(live_service.base_url) == []
    assert browser_log.problems() == []
    shot = screenshot(page, "harness-docs")
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_docs_shows_the_api(page: Page) -> None:
    """Swagger UI 4 (swagger-ui-bundle) rendered nothing here: it cannot read OpenAPI 3.1."""
    page.goto("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("grader")
    expect(page.locator(".opblock-summary-path", has_text="/api/v1/auth/token")).to_be_visible()


def test_the_seeded_people_sign_in_through_the_api(live_service: LiveService) -> None:
    for person in (live_service.instructor, *live_service.students):
        with live_service.api(person) as api:
            me = api.get("/api/v1/users/me")
        assert me.status_code == 200, me.text
        assert me.json()["email"] == person.email
    with live_service.api(live_service.instructor) as api:
        assignment = api.get(f"/api/v1/assignments/{live_service.assignment_id}")
    assert assignment.status_code == 200, assignment.text
    assert assignment.json()["catalog"] == "cs231n-a2-fc"


def test_a_page_that_asks_another_host_fails_the_check(browser: Browser) -> None:
    """The control: the recorder sees a script from elsewhere (answered by a route, so offline) and the
    check that the page fixture runs at teardown fails on it."""
    context = browser.new_context(**context_options(SERVICE))
    log = BrowserLog()
    log.watch(context)
    try:
        page = context.new_page()
        page.route(
            "http://example.invalid/**",
            lambda route: route.fulfill(body="window.fromElsewhere = true", content_type="text/javascript"),
        )
        page.set_content('<title>elsewhere</title><script src="http://example.invalid/x.js"></script>')
        assert page.evaluate("window.fromElsewhere") is True
    finally:
        context.close()

    assert log.foreign_requests(SERVICE) == ["http://example.invalid/x.js"]
    with pytest.raises(pytest.fail.Exception, match=r"example\.invalid/x\.js"):
        check_no_foreign_requests(log, SERVICE)
    check_no_foreign_requests(BrowserLog(requests=[f"GET {SERVICE}/docs"]), SERVICE)  # passes


def test_an_unrouted_request_to_another_host_never_leaves_the_machine(browser: Browser) -> None:
    """A request for an address of the internet (TEST-NET-1, which no host answers) goes to the dead proxy
    the browser is launched with, and fails there: recorded, never sent."""
    context = browser.new_context(**context_options(SERVICE))
    log = BrowserLog()
    log.watch(context)
    try:
        page = context.new_page()
        page.set_content("<title>offline</title>")
        with page.expect_event("requestfailed", timeout=10_000):
            page.evaluate("fetch('http://192.0.2.1/x.json').catch(() => null)")
    finally:
        context.close()

    assert log.foreign_requests(SERVICE) == ["http://192.0.2.1/x.json"]
    assert len(log.failed_requests) == 1
    assert "ERR_PROXY_CONNECTION_FAILED" in log.failed_requests[0] or "ERR_TUNNEL" in log.failed_requests[0]


def test_the_log_keeps_console_errors_uncaught_exceptions_failures_and_websockets(browser: Browser) -> None:
    context = browser.new_context(**context_options(SERVICE))
    log = BrowserLog()
    log.watch(context)
    try:
        page = context.new_page()
        page.route(f"{SERVICE}/missing.png", lambda route: route.fulfill(status=404, body=""))
        with page.expect_websocket(), page.expect_event("pageerror"):
            page.set_content(
                f"""<title>troubles</title><img src="{SERVICE}/missing.png">
                <script>
                  console.error("boom");
                  new WebSocket("ws://192.0.2.1/live");
                  setTimeout(() => {{ throw new Error("uncaught boom"); }});
                </script>"""
            )
    finally:
        context.close()

    assert [line.split(" (")[0] for line in log.console_errors if "boom" in line] == ["boom"]
    assert any("uncaught boom" in line for line in log.page_errors), log.page_errors
    assert log.error_responses == [f"404 GET {SERVICE}/missing.png"]
    assert log.websockets == ["ws://192.0.2.1/live"]
    assert log.foreign_requests(SERVICE) == ["ws://192.0.2.1/live"]
    assert len(log.problems()) >= 3


@pytest.mark.parametrize(
    ("url", "foreign"),
    [
        (f"{SERVICE}/static/app.css", False),
        ("ws://127.0.0.1:8123/live", False),
        ("data:image/png;base64,AAAA", False),
        ("blob:http://127.0.0.1:8123/0f1e", False),
        ("about:blank", False),
        ("http://127.0.0.1:8124/other-port", True),
        ("http://localhost:8123/same-port-other-name", True),
        ("https://cdn.jsdelivr.net/npm/swagger-ui-dist/swagger-ui.css", True),
        ("https://fonts.googleapis.com/css2?family=Inter", True),
        ("http://127.0.0.1/default-port", True),
    ],
)
def test_which_urls_are_another_hosts(url: str, foreign: bool) -> None:
    assert foreign_urls([url], SERVICE) == ([url] if foreign else [])
