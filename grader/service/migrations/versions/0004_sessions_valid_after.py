"""sessions valid after: logging out (or setting a password) ends the person's sessions and access tokens

Revision ID: 0004
Revises: 0003
Created: 2026-12-02

None for everyone before this: every unexpired token stays valid, as it was.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import grader.service.db

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain ALTER TABLE, not a batch: SQLite (3.35+) drops a column in place, where a batch would copy the
# users table, which every other table's foreign keys name.


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("sessions_valid_after", grader.service.db.UTCDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("users", "sessions_valid_after")
