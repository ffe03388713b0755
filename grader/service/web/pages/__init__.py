"""The pages' routers, one module per part of the site."""

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from grader.service.web.errors import http_error, server_error
from grader.service.web.pages import auth, course_settings, dashboard, home, submissions
from grader.service.web.rendering import STATIC_DIR

ROUTERS = (auth.router, home.router, submissions.router, dashboard.router, course_settings.router)


def install(app: FastAPI) -> None:
    """The pages' routes and their static files (/static, served by the service itself)."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in ROUTERS:
        app.include_router(router)


def install_error_pages(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, server_error)
