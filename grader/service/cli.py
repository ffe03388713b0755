"""The service's commands: `grader db upgrade`, `grader users create` and `grader users invite`. They
import the database layer only when they run, so that `grader grade` stays as fast as it was and needs no
database."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from grader.settings import Settings

db_app = typer.Typer(no_args_is_help=True, help="The service's database.")
users_app = typer.Typer(no_args_is_help=True, help="The service's user accounts.")
err = Console(stderr=True, soft_wrap=True, highlight=False)
EXIT_INVALID = 2


def settings_or_exit(doing: str) -> Settings:
    """The settings, or the command ends (exit 2) saying which GRADER_* variable is wrong and how,
    instead of a traceback."""
    from pydantic import ValidationError
    from rich.markup import escape

    from grader.settings import describe_invalid, get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        err.print(f"[red]cannot {doing}:[/red] {escape(describe_invalid(exc))}")
        raise typer.Exit(EXIT_INVALID) from exc


def _log_to_stderr() -> None:
    """The workers' lines (grader.worker) on stderr, beside uvicorn's."""
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database (GRADER_DATABASE_URL, default SQLite in GRADER_DATA_DIR) to the latest schema,
    and make the first admin from GRADER_ADMIN_EMAIL and GRADER_ADMIN_PASSWORD when both are set and no
    user has that email yet (docker-compose.yml's migrate service runs this on every start)."""
    from grader.service.migrate import current_revision, upgrade

    settings = settings_or_exit("upgrade")
    url = settings.resolved_database_url()
    upgrade(url)
    err.print(f"the database is at revision {current_revision(url)}")
    if settings.admin_email and settings.admin_password is not None:
        _first_admin(url, settings.admin_email, settings.admin_password.get_secret_value())


def _first_admin(url: str, email: str, password: str) -> None:
    from grader.service.accounts.service import create_user, find_user
    from grader.service.db import make_engine, session_factory
    from grader.service.errors import DomainError

    engine = make_engine(url)
    try:
        with session_factory(engine).begin() as session:
            if find_user(session, email=email) is not None:
                return  # made on an earlier start (or by hand): never changed from here
            create_user(session, email=email, name=email.split("@")[0], password=password, is_admin=True)
            err.print(f"created the first admin {email}")
    except DomainError as exc:
        err.print(f"[red]cannot create the first admin {email}:[/red] {exc}")
        raise typer.Exit(EXIT_INVALID) from exc
    finally:
        engine.dispose()


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument(help="the user's email (unique, in any case)")],
    name: Annotated[str, typer.Option("--name", help="the user's name")],
    admin: Annotated[bool, typer.Option("--admin", help="may do everything, in every course")] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from standard input (one line)")
    ] = False,
) -> None:
    """Create a user; the password is read from standard input, never from the command line."""
    from grader.service.accounts.service import create_user
    from grader.service.db import make_engine, session_factory
    from grader.service.errors import DomainError
    from grader.service.migrate import upgrade

    if not password_stdin:
        err.print("[red]give the password on standard input, with --password-stdin[/red]")
        raise typer.Exit(EXIT_INVALID)
    password = sys.stdin.readline().rstrip("\r\n")
    url = settings_or_exit("create the user").resolved_database_url()
    upgrade(url)
    engine = make_engine(url)
    try:
        with session_factory(engine).begin() as session:
            user = create_user(session, email=email, name=name, password=password, is_admin=admin)
            err.print(f"created {'admin ' if admin else ''}{user.email} ({user.id})")
    except DomainError as exc:
        err.print(f"[red]cannot create {email}:[/red] {exc}")
        raise typer.Exit(EXIT_INVALID) from exc
    finally:
        engine.dispose()


@users_app.command("invite")
def users_invite(
    email: Annotated[str, typer.Argument(help="the user's email (in any case)")],
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="the service's public address (default: GRADER_PUBLIC_URL)"),
    ] = None,
) -> None:
    """Print a one-time link that sets the user's password (a new one, if they have one), valid for
    GRADER_INVITE_HOURS; give it to them yourself: no mail is sent."""
    import re
    from datetime import timedelta

    from grader.service.accounts.invites import invite_expires_at, invite_url, issue_invite
    from grader.service.accounts.service import find_user
    from grader.service.db import make_engine, session_factory
    from grader.service.migrate import upgrade
    from grader.settings import PUBLIC_URL_PATTERN

    settings = settings_or_exit("invite")
    base_url = base_url or settings.public_url
    if not re.fullmatch(PUBLIC_URL_PATTERN, base_url):
        err.print(f"[red]{base_url!r} is not a base URL:[/red] give one like https://grader.example.org")
        raise typer.Exit(EXIT_INVALID)
    url = settings.resolved_database_url()
    upgrade(url)
    engine = make_engine(url)
    try:
        with session_factory(engine).begin() as session:
            user = find_user(session, email=email)
            if user is None:
                err.print(f"[red]no user has the email {email}:[/red] `grader users create` makes one")
                raise typer.Exit(EXIT_INVALID)
            lifetime = timedelta(hours=settings.invite_hours)
            token = issue_invite(user, secret=settings.secret_key.get_secret_value(), lifetime=lifetime)
            who, had_password = user.email, user.password_hash is not None
    finally:
        engine.dispose()
    print(invite_url(base_url, token))
    what = "a new password (the old one works until then)" if had_password else "a password"
    until = f"{invite_expires_at(token):%Y-%m-%d %H:%M} UTC"
    err.print(f"the link lets {who} set {what}, once, until {until}")


def worker(
    concurrency: Annotated[
        int, typer.Option(min=0, max=64, help="gradings at once (default, 0: one per core)")
    ] = 0,
) -> None:
    """Grade queued submissions from GRADER_DATABASE_URL until SIGTERM or Ctrl-C (then finish the
    gradings in progress and exit)."""
    import os
    import signal
    import threading

    from grader.core import Grader
    from grader.engine.executor import SandboxUnavailable
    from grader.service.grading.worker import run_workers

    settings = settings_or_exit("start")
    _log_to_stderr()
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda signum, frame: stop.set())
    count = concurrency or os.cpu_count() or 1
    try:
        with Grader(settings) as grader:
            err.print(f"grading with {count} worker(s) from {settings.resolved_database_url()}")
            run_workers(settings, concurrency=count, stop=stop, grader=grader)
    except SandboxUnavailable as exc:
        err.print(f"[red]the sandbox could not run:[/red] {exc}")
        raise typer.Exit(3) from exc
    err.print("stopped: no grading in progress")


def serve(
    host: Annotated[str, typer.Option(help="the address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="the port to listen on")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(min=0, max=64, help="grading workers (default: one per core; 0: the API only)"),
    ] = None,
) -> None:
    """The API (OpenAPI at /docs) and grading workers in one process, with a pool of started sandbox
    containers. SIGTERM or Ctrl-C: stop taking jobs and requests, finish the gradings in progress, exit."""
    import os
    import signal
    import threading

    from grader.core import Grader
    from grader.engine.executor import SandboxUnavailable
    from grader.service.server import serve_forever

    settings = settings_or_exit("start")
    _log_to_stderr()
    count = (os.cpu_count() or 1) if workers is None else workers
    if count and not settings.sandbox_pool_size:
        settings = settings.model_copy(update={"sandbox_pool_size": count})
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):  # until uvicorn takes them, and after it gives them back
        signal.signal(number, lambda signum, frame: stop.set())
    try:
        if not count:  # the API only: no Docker engine needed (docker-compose.yml's web has none)
            serve_forever(settings, None, host=host, port=port, workers=0, stop=stop, log=err.print)
        else:
            with Grader(settings) as grader:
                serve_forever(settings, grader, host=host, port=port, workers=count, stop=stop, log=err.print)
    except SandboxUnavailable as exc:
        err.print(f"[red]the sandbox could not run:[/red] {exc}")
        raise typer.Exit(3) from exc
    err.print("stopped: no grading in progress")
