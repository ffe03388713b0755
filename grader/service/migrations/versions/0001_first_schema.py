"""the first schema: accounts, courses, assignments, submissions, grading

Revision ID: 0001
Revises: (none)
Created: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import grader.service.db

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "courses",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("created_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_courses")),
        sa.UniqueConstraint("slug", name=op.f("uq_courses_slug")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("email_key", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email_key", name=op.f("uq_users_email_key")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("course_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_by_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", grader.service.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_api_tokens_course_id_courses"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_api_tokens_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_course_id"), ["course_id"], unique=False)

    op.create_table(
        "assignments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("course_id", sa.String(length=32), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("catalog", sa.String(length=100), nullable=False),
        sa.Column("due_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("max_submissions", sa.Integer(), nullable=True),
        sa.Column("min_interval_seconds", sa.Integer(), nullable=True),
        sa.Column(
            "hidden_results",
            sa.Enum("never", "after_due", "always", name="hidden_results", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("created_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_assignments_course_id_courses"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assignments")),
        sa.UniqueConstraint("course_id", "slug", name=op.f("uq_assignments_course_id")),
    )
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assignments_course_id"), ["course_id"], unique=False)

    op.create_table(
        "memberships",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("course_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column(
            "role",
            sa.Enum("instructor", "ta", "student", name="role", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("student_number", sa.String(length=100), nullable=True),
        sa.Column("created_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_memberships_course_id_courses"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_memberships_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
        sa.UniqueConstraint("course_id", "user_id", name=op.f("uq_memberships_course_id")),
    )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_memberships_course_id"), ["course_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_memberships_user_id"), ["user_id"], unique=False)

    op.create_table(
        "extensions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("assignment_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("due_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignments.id"],
            name=op.f("fk_extensions_assignment_id_assignments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_extensions_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_extensions")),
        sa.UniqueConstraint("assignment_id", "user_id", name=op.f("uq_extensions_assignment_id")),
    )
    with op.batch_alter_table("extensions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_extensions_assignment_id"), ["assignment_id"], unique=False)

    op.create_table(
        "submissions",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("assignment_id", sa.String(length=32), nullable=False),
        sa.Column("student_id", sa.String(length=32), nullable=False),
        sa.Column("submitted_by_id", sa.String(length=32), nullable=True),
        sa.Column("caller", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column(
            "source",
            sa.Enum("web", "api", "cli", name="source", native_enum=False, length=10),
            nullable=False,
        ),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("created_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignment_id"], ["assignments.id"], name=op.f("fk_submissions_assignment_id_assignments")
        ),
        sa.ForeignKeyConstraint(["student_id"], ["users.id"], name=op.f("fk_submissions_student_id_users")),
        sa.ForeignKeyConstraint(
            ["submitted_by_id"], ["users.id"], name=op.f("fk_submissions_submitted_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_submissions")),
        sa.UniqueConstraint("caller", "idempotency_key", name=op.f("uq_submissions_caller")),
    )
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_submissions_assignment_id"), ["assignment_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_submissions_student_id"), ["student_id"], unique=False)

    op.create_table(
        "grading_jobs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("submission_id", sa.String(length=32), nullable=False),
        sa.Column(
            "status",
            sa.Enum("queued", "running", "done", "failed", name="job_status", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("available_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", grader.service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name=op.f("fk_grading_jobs_submission_id_submissions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grading_jobs")),
    )
    with op.batch_alter_table("grading_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_grading_jobs_claimable", ["status", "available_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_grading_jobs_submission_id"), ["submission_id"], unique=False)

    op.create_table(
        "submission_files",
        sa.Column("submission_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("origin", sa.String(length=1000), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["submission_id"],
            ["submissions.id"],
            name=op.f("fk_submission_files_submission_id_submissions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("submission_id", "name", name=op.f("pk_submission_files")),
    )
    op.create_table(
        "grading_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=False),
        sa.Column("submission_id", sa.String(length=32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "graded",
                "failed",
                "abandoned",
                name="run_status",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("sandbox_image", sa.String(length=300), nullable=True),
        sa.Column("grader_version", sa.String(length=50), nullable=False),
        sa.Column("started_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", grader.service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", grader.service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("max_score", sa.Float(), nullable=True),
        sa.Column("report", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["grading_jobs.id"], name=op.f("fk_grading_runs_job_id_grading_jobs")
        ),
        sa.ForeignKeyConstraint(
            ["submission_id"], ["submissions.id"], name=op.f("fk_grading_runs_submission_id_submissions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grading_runs")),
    )
    with op.batch_alter_table("grading_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_grading_runs_job_id"), ["job_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_grading_runs_submission_id"), ["submission_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("grading_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grading_runs_submission_id"))
        batch_op.drop_index(batch_op.f("ix_grading_runs_job_id"))

    op.drop_table("grading_runs")
    op.drop_table("submission_files")
    with op.batch_alter_table("grading_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_grading_jobs_submission_id"))
        batch_op.drop_index("ix_grading_jobs_claimable")

    op.drop_table("grading_jobs")
    with op.batch_alter_table("submissions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_submissions_student_id"))
        batch_op.drop_index(batch_op.f("ix_submissions_assignment_id"))

    op.drop_table("submissions")
    with op.batch_alter_table("extensions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_extensions_assignment_id"))

    op.drop_table("extensions")
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_memberships_user_id"))
        batch_op.drop_index(batch_op.f("ix_memberships_course_id"))

    op.drop_table("memberships")
    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assignments_course_id"))

    op.drop_table("assignments")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_course_id"))

    op.drop_table("api_tokens")
    op.drop_table("users")
    op.drop_table("courses")
