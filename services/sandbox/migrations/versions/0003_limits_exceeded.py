"""`limits_exceeded`: the reaper terminates a local sandbox whose home outgrew its disk limit.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BEFORE = "'requested', 'session_ended', 'expired', 'lost', 'boot_failed', 'orphan', 'org_deleted'"


def _reasons(listed: str) -> None:
    op.drop_constraint("sandboxes_terminate_reason_check", "sandboxes", type_="check")
    op.create_check_constraint(
        "sandboxes_terminate_reason_check",
        "sandboxes",
        f"terminate_reason IS NULL OR terminate_reason IN ({listed})",
    )


def upgrade() -> None:
    _reasons(BEFORE + ", 'limits_exceeded'")


def downgrade() -> None:
    op.execute("UPDATE sandboxes SET terminate_reason = 'expired' WHERE terminate_reason = 'limits_exceeded'")
    _reasons(BEFORE)
