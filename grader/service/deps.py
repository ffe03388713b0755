"""What route handlers get from FastAPI: the request's session (committed once, when the handler has
returned and before the answer is sent), the caller, the settings and the file store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from grader.service.accounts.caller import Caller, authenticate
from grader.service.submissions.storage import FileStore
from grader.settings import Settings

# auto_error=False: a missing token is our Unauthorized, with a message that says what to do.
bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session
        session.commit()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_store(request: Request) -> FileStore:
    store: FileStore = request.app.state.store
    return store


StoreDep = Annotated[FileStore, Depends(get_store)]


def get_caller(
    session: SessionDep, settings: SettingsDep, bearer: Annotated[str | None, Depends(bearer_scheme)]
) -> Caller:
    return authenticate(session, bearer, secret=settings.secret_key.get_secret_value())


CallerDep = Annotated[Caller, Depends(get_caller, scope="function")]  # it reads the session
