"""former memberships: a member removed from a course is kept as they were, to be restored if added back

Revision ID: 0005
Revises: 0004
Created: 2026-12-03

Nobody was ever removed before this (there was no way to): the table starts empty.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import grader.service.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "former_memberships",
        sa.Column(
            "role",
            sa.Enum("instructor", "ta", "student", name="role", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("student_number", sa.String(length=100), nullable=True),
        sa.Column("lms_id", sa.String(length=100), nullable=True),
        sa.Column("sis_login_id", sa.String(length=320), nullable=True),
        sa.Column("section", sa.String(length=300), nullable=True),
        sa.Column("first_name", sa.String(length=200), nullable=True),
        sa.Column("last_name", sa.String(length=200), nullable=True),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("course_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("joined_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("removed_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("removed_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"],
            ["courses.id"],
            name=op.f("fk_former_memberships_course_id_courses"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_former_memberships_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_former_memberships")),
        sa.UniqueConstraint("course_id", "user_id", name=op.f("uq_former_memberships_course_id")),
    )
    with op.batch_alter_table("former_memberships", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_former_memberships_course_id"), ["course_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_former_memberships_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("former_memberships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_former_memberships_user_id"))
        batch_op.drop_index(batch_op.f("ix_former_memberships_course_id"))
    op.drop_table("former_memberships")
