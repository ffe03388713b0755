"""Fixtures of the browser tests: a real `grader serve` with a seeded course (`live_service`), Debian's
Chromium driven by Playwright (`browser`, `page`), the record of the page's traffic (`browser_log`), and a
full-page screenshot of every failed test's page under test-output/screenshots/.

Every `page` may ask the service for anything and nothing else: its test fails at teardown if one of its
pages asked another host (a classroom behind a firewall reaches no CDN), and no request leaves the machine.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Generator, Iterator

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from tests.web.harness import (
    CHROMIUM,
    BrowserLog,
    LiveService,
    ServeProcess,
    check_no_foreign_requests,
    context_options,
    failure_screenshot_name,
    launch_options,
    screenshot,
    screenshot_path,
    seed,
)

REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, for the `page` fixture's teardown to see a failure."""
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    return report


@pytest.fixture(scope="session")
def live_service(sandbox_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """`grader serve` on a free loopback port, SQLite in a data folder of its own, the Docker sandbox and
    one worker, with a course (an instructor, two students) and the assignment `cs231n-a2-fc` due in a week.

    One for the whole session: what a test does there (submissions, settings) the next tests see.
    """
    started = time.monotonic()
    root = tmp_path_factory.mktemp("live-service")
    database_url = f"sqlite:///{root / 'data' / 'grader.db'}"
    seeded = seed(database_url)
    process = ServeProcess(root, database_url, sandbox_image)
    try:
        process.start()
        print(
            f"live service on {process.url} in {time.monotonic() - started:.2f} s (log {process.log})",
            file=sys.stderr,
            flush=True,
        )
        yield LiveService(
            base_url=process.url,
            data_dir=process.data_dir,
            log=process.log,
            database_url=database_url,
            **seeded,
        )
    finally:
        process.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (/usr/bin/chromium), headless, for the whole session."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium (make test does)", pytrace=False)
    # A port bound and never listened on: the proxy every non-loopback request is refused by.
    with socket.socket() as dead_proxy, sync_playwright() as playwright:
        dead_proxy.bind(("127.0.0.1", 0))
        launched = playwright.chromium.launch(**launch_options(dead_proxy.getsockname()[1]))
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browser_log() -> BrowserLog:
    """The requests, console errors and failed requests of the test's `page` (and its popups)."""
    return BrowserLog()


@pytest.fixture
def page(
    browser: Browser, live_service: LiveService, browser_log: BrowserLog, request: pytest.FixtureRequest
) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies) whose relative URLs are the live service's."""
    failure_shot = failure_screenshot_name(request.node.nodeid)
    screenshot_path(failure_shot).unlink(missing_ok=True)  # an earlier run's, which would mislead
    context = browser.new_context(**context_options(live_service.base_url))
    browser_log.watch(context)
    opened = context.new_page()
    try:
        yield opened
        reports = request.node.stash.get(REPORTS, {})
        failed = [report for report in reports.values() if report.failed]
        foreign = browser_log.foreign_requests(live_service.base_url)
        if failed or foreign:
            try:
                shot = str(screenshot(opened, failure_shot))
            except PlaywrightError as error:  # a closed or crashed page: the failure itself matters more
                shot = f"none: {error.message}"
            for report in failed:  # the failures' summary is printed at the end, with these sections
                report.sections.append(("screenshot", shot))
                report.sections.append(("grader serve's last lines", live_service.stderr(3000)))
            print(f"screenshot of the page: {shot}", file=sys.stderr)
    finally:
        context.close()
    check_no_foreign_requests(browser_log, live_service.base_url)
