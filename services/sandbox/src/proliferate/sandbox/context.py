"""What the domain services are assembled from (built once in `bootstrap.py`)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from proliferate.kit.db import Database
from proliferate.sandbox.errors import WrongHost
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
        """The provider handle of a row; a host-bound sandbox of another host is `wrong_host`
        (only a replica on that host can reach its processes and files)."""
        assert row.provider_sandbox_id is not None
        provider = self.provider_for(row)
        placement = provider.placement
        if placement is not None and row.host_id is not None and row.host_id != placement.host_id:
            raise WrongHost(f"the sandbox lives on host {row.host_id}", host_id=row.host_id)
        return provider.handle(ref_of(row))


def ref_of(row: Sandbox) -> SandboxRef:
    return SandboxRef(
        sandbox_id=str(row.id),
        provider_sandbox_id=row.provider_sandbox_id or "",
        isolation=row.isolation,
        host_id=row.host_id,
        port_base=row.port_base,
    )
