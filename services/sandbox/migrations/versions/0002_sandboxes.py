"""sandboxes and snapshot_artifacts (sandbox-provider.md §2).

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

TS = sa.DateTime(timezone=True)
UUID = pg.UUID(as_uuid=True)


def upgrade() -> None:
    op.create_table(
        "snapshot_artifacts",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("organization_id", UUID, nullable=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("provider_namespace", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("provider_ref", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("source_sandbox_id", UUID, nullable=True),
        sa.Column("session_id", UUID, nullable=True),
        sa.Column("version_key", sa.Text, nullable=True),
        sa.Column("scrubbed", sa.Boolean, nullable=False),
        sa.Column("repo_commits", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("size_bytes", sa.BigInteger, nullable=True),
        sa.Column("sha256", sa.Text, nullable=True),
        sa.Column("idempotency_key", sa.Text, nullable=True),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("available_at", TS, nullable=True),
        sa.Column("deleted_at", TS, nullable=True),
        sa.CheckConstraint(
            "kind IN ('filesystem', 'pause', 'memory', 'base')", name="snapshot_artifacts_kind_check"
        ),
        sa.CheckConstraint(
            "status IN ('creating', 'available', 'deleting', 'deleted', 'failed', 'expired')",
            name="snapshot_artifacts_status_check",
        ),
        sa.CheckConstraint("provider IN ('modal', 'e2b', 'local')", name="snapshot_artifacts_provider_check"),
        sa.CheckConstraint("error IS NULL OR length(error) <= 2000", name="snapshot_artifacts_error_length_check"),
    )
    op.create_index(
        "snapshot_artifacts_provider_ref_key",
        "snapshot_artifacts",
        ["provider", "provider_namespace", "provider_ref"],
        unique=True,
        postgresql_where=sa.text("provider_ref IS NOT NULL"),
    )
    op.create_index(
        "snapshot_artifacts_base_key",
        "snapshot_artifacts",
        ["provider", "provider_namespace", "version_key"],
        unique=True,
        postgresql_where=sa.text("kind = 'base' AND status IN ('creating','available')"),
    )
    op.create_index(
        "snapshot_artifacts_base_resolution_idx",
        "snapshot_artifacts",
        ["provider", "provider_namespace", "kind", "version_key", "status", sa.text("created_at DESC")],
    )
    op.create_index(
        "snapshot_artifacts_organization_id_session_id_idx",
        "snapshot_artifacts",
        ["organization_id", "session_id"],
    )
    op.create_index(
        "snapshot_artifacts_idempotency_key",
        "snapshot_artifacts",
        ["source_sandbox_id", "idempotency_key"],
        unique=True,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )

    op.create_table(
        "sandboxes",
        sa.Column("id", UUID, primary_key=True),
        sa.Column("organization_id", UUID, nullable=True),
        sa.Column("session_id", UUID, nullable=True),
        sa.Column("run_id", UUID, nullable=True),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("provider_namespace", sa.Text, nullable=False),
        sa.Column("provider_sandbox_id", sa.Text, nullable=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("prompt_mode", sa.Text, nullable=True),
        sa.Column("source_artifact_id", UUID, sa.ForeignKey("snapshot_artifacts.id"), nullable=True),
        sa.Column("base_artifact_id", UUID, sa.ForeignKey("snapshot_artifacts.id"), nullable=True),
        sa.Column("restore_outcome", sa.Text, nullable=True),
        sa.Column("opencode_url", sa.Text, nullable=True),
        sa.Column("preview_url", sa.Text, nullable=True),
        sa.Column("isolation", sa.Text, nullable=True),
        sa.Column("host_id", sa.Text, nullable=True),
        sa.Column("port_base", sa.Integer, nullable=True),
        sa.Column("manifest_digest", sa.Text, nullable=True),
        sa.Column("repos", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("secret_file_paths", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
        sa.Column("op_kind", sa.Text, nullable=True),
        sa.Column("op_id", UUID, nullable=True),
        sa.Column("op_expires_at", TS, nullable=True),
        sa.Column("terminate_requested_at", TS, nullable=True),
        sa.Column("terminate_reason", sa.Text, nullable=True),
        sa.Column("error_code", sa.Text, nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("boot_report", pg.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("metered_through_at", TS, nullable=True),
        sa.Column("last_seen_alive_at", TS, nullable=True),
        sa.Column("missing_since", TS, nullable=True),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("ready_at", TS, nullable=True),
        sa.Column("paused_at", TS, nullable=True),
        sa.Column("terminated_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("purpose IN ('session', 'base_build')", name="sandboxes_purpose_check"),
        sa.CheckConstraint("provider IN ('modal', 'e2b', 'local')", name="sandboxes_provider_check"),
        sa.CheckConstraint(
            "status IN ('provisioning', 'booting', 'ready', 'paused', 'terminating', 'terminated', 'failed')",
            name="sandboxes_status_check",
        ),
        sa.CheckConstraint(
            "prompt_mode IS NULL OR prompt_mode IN ('setup', 'coding', 'automation', 'scratch')",
            name="sandboxes_prompt_mode_check",
        ),
        sa.CheckConstraint(
            "restore_outcome IS NULL OR restore_outcome IN ('fresh', 'restored', 'fallback_fresh')",
            name="sandboxes_restore_outcome_check",
        ),
        sa.CheckConstraint(
            "isolation IS NULL OR isolation IN ('namespaced', 'bwrap', 'process')",
            name="sandboxes_isolation_check",
        ),
        sa.CheckConstraint(
            "terminate_reason IS NULL OR terminate_reason IN ('requested', 'session_ended', 'expired',"
            " 'lost', 'boot_failed', 'orphan', 'org_deleted')",
            name="sandboxes_terminate_reason_check",
        ),
        sa.CheckConstraint(
            "(organization_id IS NULL AND session_id IS NULL) = (purpose = 'base_build')",
            name="sandboxes_owner_check",
        ),
        sa.CheckConstraint(
            "error_message IS NULL OR length(error_message) <= 2000", name="sandboxes_error_length_check"
        ),
    )
    op.create_index(
        "sandboxes_live_session_key",
        "sandboxes",
        ["session_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('provisioning','booting','ready','paused')"),
    )
    op.create_index(
        "sandboxes_provider_ref_key",
        "sandboxes",
        ["provider", "provider_namespace", "provider_sandbox_id"],
        unique=True,
        postgresql_where=sa.text("provider_sandbox_id IS NOT NULL"),
    )
    op.create_index(
        "sandboxes_port_block_key",
        "sandboxes",
        ["host_id", "port_base"],
        unique=True,
        postgresql_where=sa.text("port_base IS NOT NULL AND status <> 'terminated' AND status <> 'failed'"),
    )
    op.create_index("sandboxes_status_expires_at_idx", "sandboxes", ["status", "expires_at"])
    op.create_index(
        "sandboxes_organization_id_created_at_idx", "sandboxes", ["organization_id", sa.text("created_at DESC")]
    )


def downgrade() -> None:
    op.drop_table("sandboxes")
    op.drop_table("snapshot_artifacts")
