"""The triage store: cases and every triage made for them.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(128), primary_key=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=True),
        sa.Column("last_triage_id", sa.Integer(), nullable=True),
        sa.Column("risk_level", sa.String(16), nullable=False),
        sa.Column("main_cause", sa.String(64), nullable=False),
        sa.Column("review", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_cases_created_at", "cases", ["created_at"])
    op.create_index("ix_cases_risk_level", "cases", ["risk_level"])
    op.create_index("ix_cases_main_cause", "cases", ["main_cause"])
    op.create_table(
        "triages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(128), sa.ForeignKey("cases.case_id"), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("text_masked", sa.Text(), nullable=False),
        sa.Column("text_sha256", sa.String(64), nullable=False),
        sa.Column("predicted", JSON, nullable=False),
        sa.Column("result", JSON, nullable=False),
        sa.Column("risk_level", sa.String(16), nullable=False),
        sa.Column("processing_ms", sa.Float(), nullable=True),
        sa.Column("dedupe_key", sa.String(64), nullable=True, unique=True),
    )
    op.create_index("ix_triages_case_id", "triages", ["case_id"])
    op.create_index("ix_triages_created_at", "triages", ["created_at"])


def downgrade() -> None:
    op.drop_table("triages")
    op.drop_table("cases")
