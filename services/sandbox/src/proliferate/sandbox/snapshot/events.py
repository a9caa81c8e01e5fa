"""Builders of the snapshot artifact facts (§4.4)."""

from __future__ import annotations

from proliferate.kit.ids import derived_id
from proliferate.kit.outbox import add_event
from proliferate.protos.events.v1 import sandbox_pb2 as ev
from proliferate.sandbox.models import SnapshotArtifact
from proliferate.sandbox.sandbox.events import timestamp
from sqlalchemy.ext.asyncio import AsyncSession

SUBJECT_CREATED = "proliferate.sandbox.snapshot_artifact.created"
SUBJECT_DELETED = "proliferate.sandbox.snapshot_artifact.deleted"
_NAMESPACE = "proliferate.sandbox.snapshot_artifact"


def artifact_created(session: AsyncSession, art: SnapshotArtifact) -> None:
    message = ev.SnapshotArtifactCreated(
        artifact_id=str(art.id),
        organization_id=str(art.organization_id or ""),
        session_id=str(art.session_id or ""),
        sandbox_id=str(art.source_sandbox_id or ""),
        provider=art.provider,
        kind=art.kind,
        scrubbed=art.scrubbed,
        repo_commits=[ev.RepoCommitRef(**c) for c in art.repo_commits],
        expires_at=timestamp(art.expires_at),
    )
    add_event(session, SUBJECT_CREATED, message, event_id=derived_id(_NAMESPACE, art.id, "created"))


def artifact_deleted(session: AsyncSession, art: SnapshotArtifact) -> None:
    message = ev.SnapshotArtifactDeleted(
        artifact_id=str(art.id),
        organization_id=str(art.organization_id or ""),
        session_id=str(art.session_id or ""),
        provider=art.provider,
        kind=art.kind,
    )
    add_event(session, SUBJECT_DELETED, message, event_id=derived_id(_NAMESPACE, art.id, "deleted"))
