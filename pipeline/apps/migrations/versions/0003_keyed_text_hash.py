"""Keyed text hash: triages.text_sha256 becomes text_hmac (HMAC-SHA256 under a secret outside the database).

A plain sha256 of a note lets anyone holding the database guess the phone or ID number
in it (a phone falls in about a thousand tries). Rows kept before this revision cannot
be re-keyed (the original text is not kept), so their hashes are blanked, and their
dedupe keys, which hashed the same text, are cleared: a re-run of `tag --store` over
those cases stores them once more.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain RENAME COLUMN (SQLite 3.25+, PostgreSQL): a batch rebuild of `triages` would trip the
    # foreign key from `corrections` on SQLite
    op.execute("UPDATE triages SET text_sha256 = '', dedupe_key = NULL")
    op.execute("ALTER TABLE triages RENAME COLUMN text_sha256 TO text_hmac")


def downgrade() -> None:
    op.execute("ALTER TABLE triages RENAME COLUMN text_hmac TO text_sha256")
