"""virtual_keys, spend_records, org_blocks (llm-proxy.md §2).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "virtual_keys",
        sa.Column("id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("organization_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("session_id", pg.UUID(as_uuid=True), nullable=True),
        sa.Column("run_id", pg.UUID(as_uuid=True), nullable=True),
        sa.Column("purpose", sa.Text, nullable=True),
        sa.Column("key_hash", sa.LargeBinary, nullable=False),
        sa.Column("key_prefix", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("max_budget_micros", sa.BigInteger, nullable=True),
        sa.Column("budget_source", sa.Text, nullable=False),
        sa.Column("spend_micros", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("request_count", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("allowed_models", pg.ARRAY(sa.Text), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.Text, nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoke_reason", sa.Text, nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("key_hash", name="virtual_keys_key_hash_key"),
        sa.CheckConstraint("scope IN ('session', 'service')", name="virtual_keys_scope_check"),
        sa.CheckConstraint("status IN ('active', 'revoked', 'expired')", name="virtual_keys_status_check"),
        sa.CheckConstraint("budget_source IN ('caller', 'billing')", name="virtual_keys_budget_source_check"),
        sa.CheckConstraint(
            "revoke_reason IS NULL OR revoke_reason IN ('replaced', 'session_paused', 'session_completed',"
            " 'session_failed', 'run_finished', 'org_deleted', 'explicit')",
            name="virtual_keys_revoke_reason_check",
        ),
        sa.CheckConstraint("(scope = 'session') = (session_id IS NOT NULL)", name="virtual_keys_session_scope_check"),
        sa.CheckConstraint(
            "purpose IS NULL OR (scope = 'service' AND length(purpose) <= 64)", name="virtual_keys_purpose_check"
        ),
    )
    op.create_index(
        "virtual_keys_active_session_idx",
        "virtual_keys",
        ["session_id"],
        unique=True,
        postgresql_where=sa.text("status = 'active' AND scope = 'session'"),
    )
    op.create_index("virtual_keys_organization_id_status_idx", "virtual_keys", ["organization_id", "status"])
    op.create_index(
        "virtual_keys_run_id_idx", "virtual_keys", ["run_id"], postgresql_where=sa.text("run_id IS NOT NULL")
    )
    op.create_index(
        "virtual_keys_expires_at_idx", "virtual_keys", ["expires_at"], postgresql_where=sa.text("status = 'active'")
    )

    op.create_table(
        "spend_records",
        sa.Column("request_id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("virtual_key_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("organization_id", pg.UUID(as_uuid=True), nullable=False),
        sa.Column("session_id", pg.UUID(as_uuid=True), nullable=True),
        sa.Column("run_id", pg.UUID(as_uuid=True), nullable=True),
        sa.Column("api", sa.Text, nullable=False),
        sa.Column("requested_model", sa.Text, nullable=False),
        sa.Column("routed_model", sa.Text, nullable=True),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("http_status", sa.Integer, nullable=True),
        sa.Column("error_code", sa.Text, nullable=True),
        sa.Column("prompt_tokens", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("completion_tokens", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("cache_read_tokens", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("cache_write_tokens", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("cost_micros", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("usage_estimated", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_byte_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "api IN ('openai_chat', 'anthropic_messages', 'embeddings')", name="spend_records_api_check"
        ),
        sa.CheckConstraint(
            "status IN ('in_flight', 'succeeded', 'failed', 'client_aborted', 'abandoned')",
            name="spend_records_status_check",
        ),
    )
    op.create_index(
        "spend_records_organization_id_started_at_idx",
        "spend_records",
        ["organization_id", sa.text("started_at DESC")],
    )
    op.create_index("spend_records_session_id_started_at_idx", "spend_records", ["session_id", "started_at"])
    op.create_index("spend_records_virtual_key_id_idx", "spend_records", ["virtual_key_id"])
    op.create_index(
        "spend_records_in_flight_idx",
        "spend_records",
        ["started_at"],
        postgresql_where=sa.text("status = 'in_flight'"),
    )

    op.create_table(
        "org_blocks",
        sa.Column("organization_id", pg.UUID(as_uuid=True), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("blocked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("org_blocks")
    op.drop_table("spend_records")
    op.drop_table("virtual_keys")
