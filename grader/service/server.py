"""`grader serve`: uvicorn serving the API while worker threads grade from the same database.

The first SIGTERM (or Ctrl-C) stops both at once: uvicorn finishes the requests in flight and the workers
the gradings they are in (a grading that outlives its lease goes back to the queue for another worker).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from types import FrameType

import uvicorn

from grader.core import Grader
from grader.service.app import create_app
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
    log("first account: grader users create you@example.org --name 'Your Name' --admin --password-stdin")
    try:
        server.run()
    finally:
        stop.set()
        if workers:
            grading.join()
