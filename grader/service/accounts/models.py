"""Users (an email unique without regard to case) and a course's API tokens (stored hashed)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from grader.service.db import Base, UTCDateTime, created_column, id_column


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = id_column()
    email: Mapped[str] = mapped_column(String(320))  # as given
    email_key: Mapped[str] = mapped_column(String(320), unique=True)  # lowercased: the one that is unique
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(200))  # None: added to a course, no password
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = created_column()
    # Logging out, or setting a password, ends every session and access token issued before this.
    sessions_valid_after: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiToken(Base):
    """A token a course gives an integration (an LMS): it acts for that course only, within its scopes."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = id_column()
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[str] = mapped_column(Text)  # space-separated: submissions:write submissions:read ...
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the token, shown once
    created_by_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = created_column()
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
