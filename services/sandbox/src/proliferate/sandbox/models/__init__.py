"""SQLAlchemy models of the sandbox schema, one module per table, re-exported here."""

from __future__ import annotations

from proliferate.sandbox.models.base import Base
from proliferate.sandbox.models.sandbox import Sandbox
from proliferate.sandbox.models.snapshot_artifact import SnapshotArtifact

__all__ = ["Base", "Sandbox", "SnapshotArtifact"]
