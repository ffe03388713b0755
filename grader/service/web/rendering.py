"""Rendering a page: the templates, the context every page gets (the viewer, the CSRF token), and the
filters the templates share."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from grader.service.accounts.caller import Caller
from grader.service.web.browser import CSRF_FIELD, csrf_token_for, set_csrf_cookie
from grader.settings import Settings

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")  # autoescapes .html


def when(moment: datetime | None) -> str:
    """A moment as the page shows it before its script puts it in the viewer's time zone."""
    if moment is None:
        return "—"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment is not None else ""


def points(value: float | None) -> str:
    """2, 1.5, 0.25: no trailing zeros, at most two decimals."""
    if value is None:
        return "—"
    return f"{value:.2f}".rstrip("0").rstrip(".")


templates.env.filters.update(when=when, iso=iso, points=points)


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    viewer: Caller | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    csrf = csrf_token_for(request, settings)
    full = {
        "viewer": viewer.user if viewer is not None else None,
        "csrf_token": csrf,
        "csrf_field": CSRF_FIELD,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, full, status_code=status_code, headers=headers)
    if request.cookies.get("grader_csrf") != csrf:
        set_csrf_cookie(response, csrf, settings)
    return response
