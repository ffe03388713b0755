"""The API: one FastAPI application made from the domains' routers, with its errors as {"detail": "..."}.

`create_app(settings)` builds it; the schema is brought up to date when it starts (its lifespan).
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from grader.service.accounts.endpoints import router as accounts_router
from grader.service.accounts.throttle import LoginThrottle
from grader.service.assignments.endpoints import router as assignments_router
from grader.service.body_limit import BodySizeLimit
from grader.service.concurrency import RequestLimit
from grader.service.courses.endpoints import router as courses_router
from grader.service.db import make_engine, session_factory
from grader.service.errors import DomainError, TooSoon, Unauthorized
from grader.service.grades.endpoints import router as grades_router
from grader.service.grading.endpoints import router as regrades_router
from grader.service.integrations.gradescope import router as gradescope_router
from grader.service.metrics import CountRequests, metrics
from grader.service.migrate import upgrade
from grader.service.schemas import errors
from grader.service.submissions.endpoints import router as submissions_router
from grader.service.submissions.storage import FileStore
from grader.service.web import pages
from grader.service.web.errors import domain_error_page, page_error
from grader.service.web.security import SecurityHeaders, is_page
from grader.service.webhooks.endpoints import router as webhooks_router
from grader.settings import Settings

SandboxHealth = Callable[[], str]  # "ok", or what is wrong with the sandbox
MULTIPART_OVERHEAD = 1024 * 1024  # room for a form's boundaries and fields around its files
SWAGGER_FILES = "/static/swagger-ui"
# Swagger UI 5's files, as the swagger-ui-py package ships them (its own integration is not used).
SWAGGER_DIR = Path(str(importlib.util.find_spec("swagger_ui").origin)).parent / "static"  # type: ignore[union-attr]


def create_app(settings: Settings, *, sandbox_health: SandboxHealth | None = None) -> FastAPI:
    url = settings.resolved_database_url()
    engine = make_engine(url, connections=settings.api_concurrency)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        upgrade(url)
        yield
        engine.dispose()

    app = FastAPI(
        title="grader",
        summary="Grades CS231n assignment 2 in a sandbox: submit files, read scores and feedback.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # served below from local files: FastAPI's own page loads them from a CDN
        redoc_url=None,
    )
    _serve_docs(app)
    app.state.settings = settings
    app.state.sessions = session_factory(engine)
    app.state.store = FileStore(settings.resolved_files_dir())
    app.state.login_throttle = LoginThrottle()
    app.state.sandbox_health = sandbox_health or (lambda: "not checked by this process")
    for router in (
        accounts_router,
        courses_router,
        assignments_router,
        submissions_router,
        grades_router,
        regrades_router,
        gradescope_router,
        webhooks_router,
    ):
        app.include_router(router)
    pages.install(app)
    app.add_api_route("/healthz", healthz, methods=["GET"], tags=["service"])
    app.add_api_route(
        "/metrics",
        metrics,
        methods=["GET"],
        tags=["service"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}, **errors(401)},
    )
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(IntegrityError, _conflicting_change)
    pages.install_error_pages(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.upload_bytes + MULTIPART_OVERHEAD)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestLimit, most=settings.api_concurrency)  # waits before anything
    app.add_middleware(CountRequests)  # outermost: counts every answer, a 413 or a 500 too
    return app


def _serve_docs(app: FastAPI) -> None:
    """/docs with Swagger UI's files from the swagger-ui-bundle package, so that it works offline."""
    app.mount(SWAGGER_FILES, StaticFiles(directory=SWAGGER_DIR), name="swagger-ui")

    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="grader API",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{SWAGGER_FILES}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_FILES}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_FILES}/favicon-32x32.png",
        )

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        "/docs/oauth2-redirect", get_swagger_ui_oauth2_redirect_html, methods=["GET"], include_in_schema=False
    )


def healthz(request: Request) -> JSONResponse:
    """200 when the database answers (503 when not), with the state of the sandbox engine."""
    try:
        with request.app.state.sessions() as session:
            session.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # any failure is the answer here, not a crash
        database = f"unreachable: {type(exc).__name__}"
    sandbox = request.app.state.sandbox_health()
    healthy = database == "ok"
    body = {"status": "ok" if healthy else "unavailable", "database": database, "sandbox": sandbox}
    return JSONResponse(body, status_code=200 if healthy else 503)


def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    if is_page(request.url.path):
        return domain_error_page(request, exc)
    headers = {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, TooSoon):
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse({"detail": str(exc)}, status_code=exc.status_code, headers=headers)


def _conflicting_change(request: Request, exc: Exception) -> Response:
    """Two requests at the same moment that each passed the check the other one breaks (the same slug,
    the same member): the database's constraint refused the second."""
    detail = "another request made the same change at the same moment; look at the current state and retry"
    if is_page(request.url.path):
        return page_error(request, 409, detail)
    return JSONResponse({"detail": detail}, status_code=409)


def _invalid_request(request: Request, exc: Exception) -> Response:
    """One sentence per problem, naming the field: `body.due_at: Input should have timezone info`."""
    assert isinstance(exc, RequestValidationError)
    problems = [_describe(error) for error in exc.errors()]
    if is_page(request.url.path):
        return page_error(request, 422, "; ".join(problems) or "the form is not valid")
    return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=422)


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "request"
    return f"{where}: {error.get('msg', 'invalid')}"
