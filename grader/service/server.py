"""`grader serve`: uvicorn serving the API while worker threads grade from the same database.

The first SIGTERM (or Ctrl-C) stops both at once: uvicorn finishes the requests in flight and the workers
the gradings they are in (a grading that outlives its lease goes back to the queue for another worker).
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import shutil
import sys
import threading
from collections.abc import Callable
from types import FrameType

import uvicorn
from sqlalchemy import exists, select

from grader.core import Grader
from grader.service.accounts.models import User
from grader.service.app import create_app
from grader.service.db import make_engine
from grader.service.grading.worker import run_workers
from grader.service.migrate import upgrade
from grader.settings import DEVELOPMENT_SECRET, Settings

INVITE_PATH = re.compile(r"^/invite/[^/?]+")


class HideInviteTokens(logging.Filter):
    """An invite link sets a password until it is used: the access log keeps its path, not its token."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], INVITE_PATH.sub("/invite/<token>", args[2]), *args[3:])
        return True


class _Server(uvicorn.Server):
    """uvicorn's server, whose exit signal also stops the workers."""

    def __init__(self, config: uvicorn.Config, stop: threading.Event) -> None:
        super().__init__(config)
        self.stop = stop

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.stop.set()
        super().handle_exit(sig, frame)


def first_account_hint(url: str) -> str | None:
    """The command that creates the first account, while the database has none."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if connection.execute(select(exists().where(User.id.is_not(None)))).scalar():
                return None
    finally:
        engine.dispose()
    return (
        f'no account yet; create the first admin with: echo "$PASSWORD" | {_grader_command()} users create '
        "you@example.org --name 'Your Name' --admin --password-stdin"
    )


def _grader_command() -> str:
    """`grader` when the shell finds this same program by that name, else the path it was started by
    (`.venv/bin/grader` under `make run`)."""
    started_as = sys.argv[0]
    if os.path.basename(started_as) != "grader" or not os.path.isfile(started_as):
        return "grader"
    on_path = shutil.which("grader")
    if on_path and os.path.samefile(on_path, started_as):
        return "grader"
    return shlex.quote(os.path.relpath(started_as))


def serve_forever(
    settings: Settings,
    grader: Grader | None,
    *,
    host: str,
    port: int,
    workers: int,
    stop: threading.Event,
    log: Callable[[str], None],
) -> None:
    url = settings.resolved_database_url()
    upgrade(url)  # before the workers and the API both try to
    # Without workers (a `web` container of docker-compose.yml) there is no sandbox to report on.
    health = grader.health if grader is not None else (lambda: "not used: this process grades nothing")
    app = create_app(settings, sandbox_health=health)
    config = uvicorn.Config(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=30)
    server = _Server(config, stop)
    logging.getLogger("uvicorn.access").addFilter(HideInviteTokens())
    grading = threading.Thread(
        target=run_workers,
        kwargs={"settings": settings, "concurrency": workers, "stop": stop, "grader": grader},
        name="workers",
    )
    if workers:
        grading.start()
    log(f"serving http://{host}:{port} (API docs: http://{host}:{port}/docs) with {workers} worker(s)")
    log(f"database {url}; files in {settings.resolved_files_dir().resolve()}")
    if settings.secret_key.get_secret_value() == DEVELOPMENT_SECRET:
        log(
            "WARNING: GRADER_SECRET_KEY is the development default, which anyone can read: "
            "sign-ins can be forged (set it, and GRADER_ENV=production, for a course)"
        )
    if hint := first_account_hint(url):
        log(hint)
    try:
        server.run()
    finally:
        stop.set()
        if workers:
            grading.join()
