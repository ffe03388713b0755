"""course operations: LMS ids, late policy, regrades, webhooks

Revision ID: 0002
Revises: 0001
Created: 2026-12-02

Assignments made before this keep what they did: late work accepted without a penalty (per_day at 0).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import grader.service.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "announced_grades",
        sa.Column("assignment_id", sa.String(length=32), nullable=False),
        sa.Column("student_id", sa.String(length=32), nullable=False),
        sa.Column("counting_submission_id", sa.String(length=32), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("final_score", sa.Float(), nullable=True),
        sa.Column("late_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignments.id"],
            name=op.f("fk_announced_grades_assignment_id_assignments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["student_id"],
            ["users.id"],
            name=op.f("fk_announced_grades_student_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("assignment_id", "student_id", name=op.f("pk_announced_grades")),
    )
    op.create_table(
        "regrades",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("assignment_id", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.String(length=40), nullable=False),
        sa.Column("every_submission", sa.Boolean(), nullable=False),
        sa.Column("jobs", sa.Integer(), nullable=False),
        sa.Column("created_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignments.id"],
            name=op.f("fk_regrades_assignment_id_assignments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_regrades")),
    )
    with op.batch_alter_table("regrades", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_regrades_assignment_id"), ["assignment_id"], unique=False)

    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("assignment_id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", grader.service.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["assignment_id"],
            ["assignments.id"],
            name=op.f("fk_webhooks_assignment_id_assignments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhooks")),
    )
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhooks_assignment_id"), ["assignment_id"], unique=False)

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("webhook_id", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=50), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("pending", "delivered", "failed", name="delivery_status", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=200), nullable=True),
        sa.Column("lease_expires_at", grader.service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", grader.service.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["webhook_id"],
            ["webhooks.id"],
            name=op.f("fk_webhook_deliveries_webhook_id_webhooks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_webhook_deliveries_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_webhook_deliveries_webhook_id"), ["webhook_id"], unique=False)

    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("delivery_id", sa.String(length=32), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", grader.service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_attempts_delivery_id"), ["delivery_id"], unique=False)

    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "late_policy",
                sa.Enum("none", "per_day", name="late_policy", native_enum=False, length=20),
                nullable=False,
                server_default="per_day",
            )
        )
        batch_op.add_column(sa.Column("penalty_per_day", sa.Float(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("max_late_days", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "counting",
                sa.Enum("best", "last", name="counting", native_enum=False, length=10),
                nullable=False,
                server_default="best",
            )
        )
        batch_op.add_column(sa.Column("canvas_assignment_id", sa.String(length=100), nullable=True))

    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("login_email_pattern", sa.String(length=300), nullable=True))

    with op.batch_alter_table("grading_jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("regrade_id", sa.String(length=32), nullable=True))
        batch_op.drop_index(batch_op.f("ix_grading_jobs_claimable"))
        batch_op.create_index(
            "ix_grading_jobs_claimable", ["status", "priority", "available_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_grading_jobs_regrade_id"), ["regrade_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_grading_jobs_regrade_id_regrades"), "regrades", ["regrade_id"], ["id"]
        )

    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lms_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("sis_login_id", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("section", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("first_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("last_name", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.drop_column("last_name")
        batch_op.drop_column("first_name")
        batch_op.drop_column("section")
        batch_op.drop_column("sis_login_id")
        batch_op.drop_column("lms_id")

    with op.batch_alter_table("grading_jobs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_grading_jobs_regrade_id_regrades"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_grading_jobs_regrade_id"))
        batch_op.drop_index("ix_grading_jobs_claimable")
        batch_op.create_index(
            batch_op.f("ix_grading_jobs_claimable"), ["status", "available_at"], unique=False
        )
        batch_op.drop_column("regrade_id")
        batch_op.drop_column("priority")

    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_column("login_email_pattern")

    with op.batch_alter_table("assignments", schema=None) as batch_op:
        batch_op.drop_column("canvas_assignment_id")
        batch_op.drop_column("counting")
        batch_op.drop_column("max_late_days")
        batch_op.drop_column("penalty_per_day")
        batch_op.drop_column("late_policy")

    with op.batch_alter_table("webhook_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_attempts_delivery_id"))

    op.drop_table("webhook_attempts")
    with op.batch_alter_table("webhook_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_deliveries_webhook_id"))
        batch_op.drop_index("ix_webhook_deliveries_due")

    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("webhooks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhooks_assignment_id"))

    op.drop_table("webhooks")
    with op.batch_alter_table("regrades", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_regrades_assignment_id"))

    op.drop_table("regrades")
    op.drop_table("announced_grades")
