"""Error pages: what happened, in words a student understands, and what to do; never a stack trace."""

from __future__ import annotations

from fastapi import Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from grader.service.errors import DomainError, TooSoon
from grader.service.web.browser import LoginRequired, login_url
from grader.service.web.rendering import render
from grader.service.web.security import is_page

TITLES = {
    400: "This request could not be understood",
    401: "Please sign in",
    403: "You may not do this",
    404: "Not found",
    405: "This page does not take that request",
    409: "This conflicts with the current state",
    413: "The upload is too large",
    422: "Something in the form needs fixing",
    429: "Too many attempts",
    500: "Something went wrong on our side",
    503: "The service is busy",
}
ADVICE = {
    403: "If you think you should have access, ask your course's staff.",
    404: "The address may be mistyped, or the page may belong to someone else.",
    413: "Hand in only the graded .py files, or a .zip of the assignment folder without its datasets.",
    429: "Wait a moment before trying again.",
    500: "The staff have the details in the service's log. Please try again in a minute.",
}


def page_error(
    request: Request, status_code: int, message: str, *, retry_after: int | None = None
) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    context = {
        "status": status_code,
        "title": TITLES.get(status_code, "Something went wrong"),
        "message": message,
        "advice": ADVICE.get(status_code, ""),
        "retry_after": retry_after,
    }
    return render(request, "error.html", context, status_code=status_code, headers=headers)


def domain_error_page(request: Request, exc: DomainError) -> Response:
    """A domain error on a page: the login page for LoginRequired, an error page for the others."""
    if isinstance(exc, LoginRequired):
        return RedirectResponse(login_url(exc.next_path), status_code=303)
    retry_after = exc.retry_after if isinstance(exc, TooSoon) else None
    return page_error(request, exc.status_code, str(exc), retry_after=retry_after)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (an unknown path, a method a route does not take): a page for pages, the
    API's JSON for the API."""
    assert isinstance(exc, StarletteHTTPException)
    if not is_page(request.url.path):
        return await http_exception_handler(request, exc)
    message = exc.detail if exc.status_code != 404 else "There is no page at this address."
    return page_error(request, exc.status_code, str(message))


def server_error(request: Request, exc: Exception) -> Response:
    """An unexpected failure: the page says so without a trace (the log has it)."""
    if not is_page(request.url.path):
        return JSONResponse({"detail": "internal error: the service's log has the details"}, status_code=500)
    return page_error(request, 500, "The page could not be shown because of an error in the service.")


def page_body_too_large(message: str) -> bytes:
    """The 413 a page's form gets before anything reads it (the body-size middleware has no templates)."""
    return (
        "<!doctype html><html lang=en><meta charset=utf-8><title>The upload is too large</title>"
        f"<h1>The upload is too large</h1><p>{message}.</p><p>{ADVICE[413]}</p>"
        "<p><a href=/>Back to your courses</a></p></html>"
    ).encode()
