"""Handlers' corrections: case status and current labels, and the correction history.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        # existing cases are open and uncorrected
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="open"))
        batch.add_column(sa.Column("labels", JSON, nullable=True))
        batch.add_column(sa.Column("corrected_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("corrected_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("resolved_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("resolved_by", sa.String(128), nullable=True))
        batch.add_column(sa.Column("n_corrections", sa.Integer(), nullable=False, server_default="0"))
        batch.create_index("ix_cases_status", ["status"])
        batch.create_index("ix_cases_corrected_at", ["corrected_at"])
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(128), sa.ForeignKey("cases.case_id"), nullable=False),
        sa.Column("triage_id", sa.Integer(), sa.ForeignKey("triages.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("author", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("before", JSON, nullable=False),
        sa.Column("after", JSON, nullable=True),
        sa.Column("changed", JSON, nullable=False),
        sa.Column("resolved", sa.Boolean(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
    )
    op.create_index("ix_corrections_case_id", "corrections", ["case_id"])
    op.create_index("ix_corrections_created_at", "corrections", ["created_at"])


def downgrade() -> None:
    op.drop_table("corrections")
    op.drop_index("ix_cases_corrected_at", table_name="cases")
    op.drop_index("ix_cases_status", table_name="cases")
    # plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch rebuild of `cases` would trip the
    # foreign keys from `triages` on SQLite
    for name in ("n_corrections", "resolved_by", "resolved_at", "corrected_by", "corrected_at", "labels", "status"):
        op.drop_column("cases", name)
