"""The routing table in memory: routes by name and alias, their prices, the retry policy.

Loaded once per process from the models file (`loader.py`); immutable afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

MICROS = Decimal(1_000_000)


class Dialect(StrEnum):
    """A wire format: the caller's (by route) or an upstream's (by provider)."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"

    @property
    def api(self) -> str:
        """The `spend_records.api` value of a request in this dialect."""
        return "openai_chat" if self is Dialect.OPENAI else "anthropic_messages"


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    @property
    def any_tokens(self) -> bool:
        return bool(
            self.prompt_tokens or self.completion_tokens or self.cache_read_tokens or self.cache_write_tokens
        )


@dataclass(frozen=True)
class Price:
    """USD per token. `prompt_tokens` counts uncached input only (cache reads/writes apart)."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal

    def cost_micros(self, usage: Usage) -> int:
        usd = (
            self.input * usage.prompt_tokens
            + self.output * usage.completion_tokens
            + self.cache_read * usage.cache_read_tokens
            + self.cache_write * usage.cache_write_tokens
        )
        return int((usd * MICROS).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Route:
    """One public model name and the deployment it is served by."""

    name: str
    aliases: tuple[str, ...]
    upstream_model: str  # litellm form, `<provider>/<model id>`
    provider: str
    model_id: str  # what the vendor is asked for
    api_base: str | None
    api_key: str | None  # resolved from the environment; None when its variable is unset
    api_key_env: str | None  # the variable named by `os.environ/NAME`
    price: Price
    passthrough: bool = True
    litellm_params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.api_key_env is None or self.api_key is not None

    @property
    def dialect(self) -> Dialect | None:
        """The upstream's own wire format when the proxy can forward bytes to it, else None."""
        if not self.passthrough:
            return None
        if self.provider == "anthropic":
            return Dialect.ANTHROPIC
        if self.provider == "openai":
            return Dialect.OPENAI
        return None

    def passthrough_url(self, dialect: Dialect) -> str:
        if dialect is Dialect.ANTHROPIC:
            base = (self.api_base or "https://api.anthropic.com").rstrip("/")
            return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"
        base = (self.api_base or "https://api.openai.com/v1").rstrip("/")
        return f"{base}/chat/completions"


@dataclass(frozen=True)
class RetryPolicy:
    num_retries: int = 2
    retry_after_s: float = 1.0
    timeout_s: float = 300.0
    connect_timeout_s: float = 10.0


class ModelCatalog:
    def __init__(
        self,
        routes: Iterable[Route],
        fallbacks: Mapping[str, tuple[str, ...]] | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.routes: dict[str, Route] = {r.name: r for r in routes}
        self._by_name: dict[str, Route] = {}
        for route in self.routes.values():
            self._by_name[route.name] = route
            for alias in route.aliases:
                self._by_name[alias] = route
        self.fallbacks = dict(fallbacks or {})
        self.policy = policy or RetryPolicy()

    def resolve(self, name: str) -> Route | None:
        """The route of a public name or alias."""
        return self._by_name.get(name)

    def candidates(self, route: Route) -> list[Route]:
        """The route, then its configured fallbacks in order (each once)."""
        chain = [route]
        for name in self.fallbacks.get(route.name, ()):
            fallback = self.resolve(name)
            if fallback is not None and fallback not in chain:
                chain.append(fallback)
        return chain

    def names(self) -> frozenset[str]:
        return frozenset(self._by_name)
