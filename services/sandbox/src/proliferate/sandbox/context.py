"""What the domain services are assembled from (built once in `bootstrap.py`)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from proliferate.kit.db import Database
from proliferate.sandbox.models import Sandbox
from proliferate.sandbox.providers.base import ProviderSandbox, SandboxProvider, SandboxRef
from proliferate.sandbox.providers.registry import ProviderRegistry
from proliferate.sandbox.settings import Settings


@dataclass
class SandboxContext:
    db: Database
    settings: Settings
    providers: ProviderRegistry

    @property
    def agent_argv(self) -> list[str] | None:
        command = self.settings.sandbox_local_agent_command
        return shlex.split(command) if command else None

    def provider_for(self, row: Sandbox) -> SandboxProvider:
        return self.providers.get(row.provider)

    def handle(self, row: Sandbox) -> ProviderSandbox:
        assert row.provider_sandbox_id is not None
        return self.provider_for(row).handle(ref_of(row))


def ref_of(row: Sandbox) -> SandboxRef:
    return SandboxRef(
        sandbox_id=str(row.id),
        provider_sandbox_id=row.provider_sandbox_id or "",
        isolation=row.isolation,
        host_id=row.host_id,
        port_base=row.port_base,
    )
