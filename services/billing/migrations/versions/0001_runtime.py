"""The billing schema's runtime tables: outbox, processed events, periodic jobs.

Revision ID: 0001
Revises:
"""

from proliferate.kit.migrations import create_runtime_tables_v1, drop_runtime_tables_v1

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_runtime_tables_v1()


def downgrade() -> None:
    drop_runtime_tables_v1()
