"""Composition root of the llm_proxy service: its settings and how its parts are assembled."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import msgspec
from proliferate.kit.logs import register_pattern, register_secret
from proliferate.kit.runtime import HttpEdge, Runtime, ServiceDefinition, ServiceParts, run_main
from proliferate.kit.settings import AnySecret, ListenPort, ServiceSettings
from proliferate.llm_proxy import app, grpc_server, worker
from proliferate.llm_proxy.llm_request.service import LlmRequestService, TokenCounter
from proliferate.llm_proxy.llm_request.upstream import Upstream
from proliferate.llm_proxy.model_route.catalog import ModelCatalog
from proliferate.llm_proxy.model_route.loader import SHIPPED_MODELS_FILE, load_catalog
from proliferate.llm_proxy.org_block.service import OrgBlockSet
from proliferate.llm_proxy.spend_record.writer import SpendWriter
from proliferate.llm_proxy.vendor import import_litellm, model_cost
from proliferate.llm_proxy.virtual_key.cache import KeyCache
from proliferate.llm_proxy.virtual_key.secret import KEY_PATTERN
from proliferate.llm_proxy.virtual_key.serial import normalized_base_url
from proliferate.llm_proxy.virtual_key.service import VirtualKeyService

Seconds = Annotated[float, msgspec.Meta(gt=0)]
Duration = Annotated[str, msgspec.Meta(pattern=r"^\d+[smhd]?$")]
VENDOR_KEYS = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "DEEPSEEK_API_KEY",
    "XAI_API_KEY",
    "MISTRAL_API_KEY",
)


class Settings(ServiceSettings, frozen=True, kw_only=True):
    """The llm_proxy service's environment (besides what every service reads)."""

    llm_proxy_host: str = "127.0.0.1"
    llm_proxy_port: ListenPort = 4000
    # Where sandboxes reach the edge; IssueVirtualKey returns it with exactly one `/v1`.
    llm_proxy_public_url: str | None = None
    llm_proxy_models_file: str | None = None
    llm_proxy_key_duration: Duration = "24h"
    llm_proxy_auth_cache_ttl_s: Seconds = 2.0
    llm_proxy_max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 32 * 1024 * 1024
    llm_proxy_stream_keepalive_s: Seconds = 15.0
    llm_proxy_stream_idle_timeout_s: Seconds = 120.0
    llm_proxy_drain_timeout_s: Annotated[float, msgspec.Meta(ge=0)] = 300.0
    llm_proxy_spend_retention_days: Annotated[int, msgspec.Meta(ge=1)] = 400
    llm_proxy_abandon_after_s: Seconds = 900.0
    llm_proxy_sweep_interval_s: Seconds = 300.0
    llm_proxy_block_refresh_s: Seconds = 2.0
    anthropic_api_key: AnySecret | None = None
    openai_api_key: AnySecret | None = None
    gemini_api_key: AnySecret | None = None
    deepseek_api_key: AnySecret | None = None
    xai_api_key: AnySecret | None = None
    mistral_api_key: AnySecret | None = None

    @property
    def public_url(self) -> str:
        return normalized_base_url(
            self.llm_proxy_public_url or f"http://{self.llm_proxy_host}:{self.llm_proxy_port}"
        )

    @property
    def key_duration(self) -> timedelta:
        value = self.llm_proxy_key_duration
        unit = value[-1] if value[-1] in "smhd" else "s"
        amount = int(value.rstrip("smhd"))
        return timedelta(seconds=amount * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit])

    def vendor_environment(self) -> dict[str, str]:
        """What `os.environ/NAME` in the models file resolves to: these settings, then the process env."""
        env = {k: v for k, v in os.environ.items() if v}
        for name in VENDOR_KEYS:
            value = getattr(self, name.lower())
            if value:
                env[name] = value
        return env


@dataclass
class Parts:
    """What the servicers, consumers, jobs and the edge share in one process."""

    catalog: ModelCatalog
    keys: VirtualKeyService
    requests: LlmRequestService


def build(runtime: Runtime[Settings]) -> Parts:
    settings = runtime.settings
    register_pattern(KEY_PATTERN)
    path = Path(settings.llm_proxy_models_file) if settings.llm_proxy_models_file else SHIPPED_MODELS_FILE
    catalog = load_catalog(path, settings.vendor_environment(), model_cost())
    for route in catalog.routes.values():
        if route.api_key:
            register_secret(route.api_key)
    keys = VirtualKeyService(settings.key_duration, lambda name: catalog.resolve(name) is not None)
    requests = LlmRequestService(
        runtime.db,
        catalog,
        KeyCache(runtime.db, ttl_s=settings.llm_proxy_auth_cache_ttl_s),
        OrgBlockSet(runtime.db, refresh_s=settings.llm_proxy_block_refresh_s),
        Upstream(catalog.policy, import_litellm),
        TokenCounter(import_litellm),
        SpendWriter(runtime.db),
        keepalive_s=settings.llm_proxy_stream_keepalive_s,
        idle_timeout_s=settings.llm_proxy_stream_idle_timeout_s,
    )
    return Parts(catalog, keys, requests)


async def assemble(runtime: Runtime[Settings]) -> ServiceParts:
    parts = build(runtime)
    settings = runtime.settings

    async def drain() -> None:
        await parts.requests.drain(settings.llm_proxy_drain_timeout_s)

    return ServiceParts(
        register_grpc=grpc_server.registrar(runtime, parts),
        consumers=worker.consumers(parts),
        jobs=worker.jobs(runtime, parts),
        http=HttpEdge(app.create_app(runtime, parts), settings.llm_proxy_host, settings.llm_proxy_port),
        drain=drain,
    )


DEFINITION = ServiceDefinition(name="llm_proxy", settings_type=Settings, assemble=assemble)


def main() -> None:
    run_main(DEFINITION)
