"""The only place rows become protobuf messages."""

from __future__ import annotations

import json
from typing import Any

from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb
from proliferate.sandbox.models import Sandbox, SnapshotArtifact
from proliferate.sandbox.providers.base import Capabilities
from proliferate.sandbox.sandbox.events import ts


def capabilities(caps: Capabilities) -> pb.Capabilities:
    return pb.Capabilities(
        pause=caps.pause,
        auto_pause=caps.auto_pause,
        memory_snapshot=caps.memory_snapshot,
        docker=caps.docker,
        vscode=caps.vscode,
    )


def sandbox(row: Sandbox, caps: Capabilities | None = None) -> pb.Sandbox:
    message = pb.Sandbox(
        id=str(row.id),
        organization_id=str(row.organization_id or ""),
        session_id=str(row.session_id or ""),
        run_id=str(row.run_id or ""),
        provider=row.provider,
        status=row.status,
        opencode_url=row.opencode_url or "",
        preview_url=row.preview_url or "",
        isolation=row.isolation or "",
        prompt_mode=row.prompt_mode or "",
        restore_outcome=row.restore_outcome or "",
        source_artifact_id=str(row.source_artifact_id or ""),
        terminate_reason=row.terminate_reason or "",
        error_code=row.error_code or "",
        error_message=row.error_message or "",
        boot_report_json=json.dumps(row.boot_report or {}, sort_keys=True),
    )
    for name in ("expires_at", "created_at", "ready_at", "paused_at", "terminated_at"):
        value = getattr(row, name)
        if value is not None:
            getattr(message, name).CopyFrom(ts(value))
    if caps is not None:
        message.capabilities.CopyFrom(capabilities(caps))
    return message


def artifact(art: SnapshotArtifact) -> pb.SnapshotArtifact:
    message = pb.SnapshotArtifact(
        id=str(art.id),
        kind=art.kind,
        scrubbed=art.scrubbed,
        repo_commits=[pb.RepoCommit(**c) for c in art.repo_commits],
        status=art.status,
        provider=art.provider,
        session_id=str(art.session_id or ""),
        source_sandbox_id=str(art.source_sandbox_id or ""),
        size_bytes=art.size_bytes or 0,
    )
    if art.expires_at is not None:
        message.expires_at.CopyFrom(ts(art.expires_at))
    if art.created_at is not None:
        message.created_at.CopyFrom(ts(art.created_at))
    return message


def boot_summary(steps: dict[str, dict[str, Any]], total_ms: int) -> pb.BootSummary:
    return pb.BootSummary(
        steps=[
            pb.BootStep(
                name=name,
                status=str(step.get("status", "")),
                ms=int(step.get("ms", 0)),
                detail=str(step.get("detail", "")),
            )
            for name, step in steps.items()
        ],
        total_ms=total_ms,
    )
