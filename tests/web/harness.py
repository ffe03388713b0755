"""The browser tests' harness: a real `grader serve` with a seeded course, Chromium's launch options, the
record of a browser context's traffic (and the check that it never left the service), and screenshots.

Import it as `tests.web.harness` (never relatively): pytest imports this folder's modules as `web.*`, and a
second name would load a second copy.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    WebError,
    WebSocket,
    expect,
)

REPOSITORY = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPOSITORY / "test-output" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")  # Debian's; Playwright's own builds come from a CDN we cannot reach
SECRET = "a-browser-test-secret-of-more-than-32-characters"
CATALOG = "cs231n-a2-fc"
STARTUP_SECONDS = 120.0  # the first start builds the sandbox's pool container
STOP_SECONDS = 60.0
# Schemes that name no host: a page may use them freely.
LOCAL_SCHEMES = frozenset({"data", "blob", "about", "javascript"})
DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---- the service ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    id: str
    email: str
    name: str
    password: str


@dataclass
class LiveService:
    """A running `grader serve` (SQLite, the Docker sandbox, one worker) and the course seeded in it."""

    base_url: str
    data_dir: Path
    log: Path  # the process's stderr (uvicorn's access log, the worker's lines), readable at any time
    database_url: str
    course_id: str
    course_slug: str
    assignment_id: str
    assignment_slug: str
    instructor: Person
    students: tuple[Person, Person]
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)

    def token(self, person: Person) -> str:
        """A bearer token of the person, from POST /api/v1/auth/token (the password flow)."""
        if person.email not in self._tokens:
            answer = httpx2.post(
                f"{self.base_url}/api/v1/auth/token",
                data={"username": person.email, "password": person.password},
                timeout=30,
            )
            assert answer.status_code == 200, f"signing in {person.email}: {answer.status_code} {answer.text}"
            self._tokens[person.email] = str(answer.json()["access_token"])
        return self._tokens[person.email]

    def api(self, person: Person) -> httpx2.Client:
        """A client of the API acting as the person (close it, or use it in a `with`)."""
        return httpx2.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {self.token(person)}"}, timeout=30
        )

    def stderr(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


PEOPLE = {  # (email, name, password); example.org is reserved, the passwords are the tests' own
    "instructor": ("ada.instructor@example.org", "Ada Instructor", "instructor-password-1"),
    "student1": ("sam.student@example.org", "Sam Student", "student-password-1"),
    "student2": ("kim.student@example.org", "Kim Student", "student-password-2"),
}


def seed(database_url: str) -> dict[str, Any]:
    """Migrate the database and add the course: an instructor, two students, the assignment due in a week."""
    from grader.service.accounts.service import create_user
    from grader.service.assignments.service import create_assignment
    from grader.service.courses.models import Course, Membership, Role
    from grader.service.db import make_engine, session_factory
    from grader.service.migrate import upgrade

    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with session_factory(engine).begin() as session:
            course = Course(slug="cs231n", title="CS231n: Deep Learning for Computer Vision")
            session.add(course)
            session.flush()
            people: dict[str, Person] = {}
            for key, (email, name, password) in PEOPLE.items():
                user = create_user(session, email=email, name=name, password=password)
                role = Role.instructor if key == "instructor" else Role.student
                session.add(Membership(course_id=course.id, user_id=user.id, role=role))
                people[key] = Person(id=user.id, email=email, name=name, password=password)
            assignment = create_assignment(
                session,
                course,
                slug="a2",
                title="Assignment 2: Fully-connected nets",
                catalog=CATALOG,
                due_at=datetime.now(UTC).replace(microsecond=0) + timedelta(days=7),
            )
            return {
                "course_id": course.id,
                "course_slug": course.slug,
                "assignment_id": assignment.id,
                "assignment_slug": assignment.slug,
                "instructor": people["instructor"],
                "students": (people["student1"], people["student2"]),
            }
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServeProcess:
    """`grader serve` on a free loopback port, started from a folder of its own (no developer's .env)."""

    def __init__(self, root: Path, database_url: str, sandbox_image: str) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.env = {
            **os.environ,
            "GRADER_ENV": "development",
            "GRADER_DATABASE_URL": database_url,
            "GRADER_DATA_DIR": str(self.data_dir),
            "GRADER_SECRET_KEY": SECRET,
            "GRADER_SANDBOX": "docker",
            "GRADER_SANDBOX_IMAGE": sandbox_image,
            "GRADER_WORKER_POLL_SECONDS": "0.2",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = root / "serve.log"
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start it and wait for /healthz; another port if another process took the free one first."""
        for _attempt in range(3):
            self.port = free_port()
            self.log = self.root / f"serve-{self.port}.log"
            command = [sys.executable, "-m", "grader.cli", "serve", "--host", "127.0.0.1"]
            command += ["--port", str(self.port), "--workers", "1"]
            with self.log.open("wb") as log:
                self.process = subprocess.Popen(
                    command, cwd=self.root, env=self.env, stdout=log, stderr=log, start_new_session=True
                )
            if self._wait_healthy():
                return
            if "address already in use" not in self.stderr().lower():
                break
        self.kill()
        pytest.fail(f"`grader serve` did not start (log {self.log}):\n{self.stderr()}", pytrace=False)

    def _wait_healthy(self) -> bool:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                if httpx2.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return True
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
        return False

    def stderr(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> None:
        """SIGTERM (it finishes the grading in progress), then wait; SIGKILL if it does not exit."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            _log(f"`grader serve` did not stop in {STOP_SECONDS:.0f} s of SIGTERM: killed")
            self.kill()
            return
        if code != 0:
            _log(f"`grader serve` exited with {code} on SIGTERM:\n{self.stderr()}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


# ---- the browser --------------------------------------------------------------------------------------


def launch_options(dead_proxy_port: int) -> dict[str, Any]:
    """Playwright's launch options for Debian's Chromium, headless.

    Every request to another host goes to a proxy port nothing listens on, so a page that asks the internet
    for something fails here as it would in a classroom behind a firewall (Chromium never proxies loopback
    addresses, so the service is reached directly); the context's record still sees the request.
    """
    return {
        "executable_path": str(CHROMIUM),
        "headless": True,
        # Playwright's default, said aloud: Chromium's sandbox cannot run as root, nor in most containers.
        "chromium_sandbox": False,
        "args": [f"--proxy-server=http://127.0.0.1:{dead_proxy_port}"],
    }


def context_options(base_url: str) -> dict[str, Any]:
    """One browser context per test: its own cookies; relative URLs (`page.goto("/login")`) on the service;
    dates rendered in UTC and English whatever the machine's settings."""
    return {"base_url": base_url, "locale": "en-US", "timezone_id": "UTC"}


@dataclass
class BrowserLog:
    """What the pages of one browser context did: every request and websocket, and what went wrong."""

    requests: list[str] = field(default_factory=list)  # "GET http://127.0.0.1:1234/docs", in order
    websockets: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)  # console.error, and Chromium's own errors
    page_errors: list[str] = field(default_factory=list)  # exceptions no script caught
    failed_requests: list[str] = field(default_factory=list)  # no answer: refused, aborted, blocked
    error_responses: list[str] = field(default_factory=list)  # answered 4xx or 5xx

    def watch(self, context: BrowserContext) -> None:
        """Record the context's traffic from now on, its pages' and popups' alike."""
        context.on("request", self._request)
        context.on("requestfailed", self._request_failed)
        context.on("response", self._response)
        context.on("console", self._console)
        context.on("weberror", self._web_error)
        context.on("page", self._page)
        for page in context.pages:
            self._page(page)

    def urls(self) -> list[str]:
        return [request.split(" ", 1)[1] for request in self.requests] + self.websockets

    def foreign_requests(self, base_url: str) -> list[str]:
        """The URLs asked for that are not the service's (same host and port as `base_url`)."""
        return foreign_urls(self.urls(), base_url)

    def problems(self) -> list[str]:
        """Everything that went wrong, for `assert log.problems() == []`."""
        return [
            *(f"console error: {line}" for line in self.console_errors),
            *(f"uncaught: {line}" for line in self.page_errors),
            *(f"failed: {line}" for line in self.failed_requests),
            *(f"answered {line}" for line in self.error_responses),
        ]

    def _request(self, request: Request) -> None:
        self.requests.append(f"{request.method} {request.url}")

    def _request_failed(self, request: Request) -> None:
        self.failed_requests.append(f"{request.method} {request.url}: {request.failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400:
            self.error_responses.append(f"{response.status} {response.request.method} {response.url}")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            where = message.location
            self.console_errors.append(f"{message.text} ({where['url']}:{where['lineNumber']})")

    def _web_error(self, error: WebError) -> None:
        self.page_errors.append(str(error.error))

    def _page(self, page: Page) -> None:
        page.on("websocket", self._websocket)

    def _websocket(self, websocket: WebSocket) -> None:
        self.websockets.append(websocket.url)


def _host_and_port(url: str) -> tuple[str, int | None] | None:
    """The host and port a URL reaches (None for a scheme that reaches none, such as data:)."""
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return None
    try:
        port = parts.port
    except ValueError:  # a port that is no number reaches nothing we allow
        return (parts.hostname or parts.netloc, -1)
    return (parts.hostname or "", port if port is not None else DEFAULT_PORTS.get(parts.scheme))


def foreign_urls(urls: list[str], base_url: str) -> list[str]:
    """The URLs that reach a host other than the service's: another host, or another port of its host."""
    service = _host_and_port(base_url)
    return [url for url in urls if (reached := _host_and_port(url)) is not None and reached != service]


def check_no_foreign_requests(log: BrowserLog, base_url: str) -> None:
    """Fail the test if any page asked a host other than the service's for anything."""
    foreign = log.foreign_requests(base_url)
    if foreign:
        listed = "\n  ".join(foreign)
        pytest.fail(
            f"the pages asked {len(foreign)} time(s) for something not on the service ({base_url}); "
            f"a classroom behind a firewall reaches no other host:\n  {listed}",
            pytrace=False,
        )


# ---- screenshots --------------------------------------------------------------------------------------


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save the page as test-output/screenshots/NAME.png (at the repository's root) and return the path."""
    path = screenshot_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=path, full_page=full_page)
    return path


def screenshot_path(name: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._\[\]-]+", "_", name).strip("._") or "screenshot"
    return SCREENSHOTS / f"{safe}.png"


def failure_screenshot_name(nodeid: str) -> str:
    """`tests/web/test_login.py::test_wrong_password[x]` -> `FAILED-test_login-test_wrong_password[x]`."""
    module, _, test = nodeid.partition("::")
    return f"FAILED-{Path(module).stem}-{test.replace('::', '-')}"


def log_in(page: Page, person: Person) -> None:
    """Sign in through the login page, as a person does (its labels and button)."""
    page.goto("/login")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill(person.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Your courses")).to_be_visible()
