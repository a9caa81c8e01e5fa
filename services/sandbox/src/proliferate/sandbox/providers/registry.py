"""The enabled providers of this replica, by name, and the default."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from proliferate.sandbox.errors import ProviderDisabled
from proliferate.sandbox.providers.base import SandboxProvider


@dataclass
class ProviderRegistry:
    providers: dict[str, SandboxProvider]
    default: str

    def get(self, name: str) -> SandboxProvider:
        provider = self.providers.get(name)
        if provider is None:
            raise ProviderDisabled(f"provider {name!r} is not enabled", provider=name)
        return provider

    def __iter__(self) -> Iterator[SandboxProvider]:
        return iter(self.providers.values())

    def names(self) -> list[str]:
        return list(self.providers)
