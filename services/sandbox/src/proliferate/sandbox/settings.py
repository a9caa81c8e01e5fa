"""The sandbox service's environment (sandbox-provider.md §8.2), decoded once at startup."""

from __future__ import annotations

import re
from typing import Annotated, Literal

import msgspec
from proliferate.kit.settings import AnySecret, ServiceSettings

ProviderName = Literal["local", "modal", "e2b"]
Seconds = Annotated[float, msgspec.Meta(gt=0, le=86400)]


class Settings(ServiceSettings, frozen=True, kw_only=True):
    default_sandbox_provider: ProviderName = "local"
    # Comma-separated; empty = only the default provider.
    sandbox_enabled_providers: str = ""
    sandbox_timeout_seconds: Annotated[int, msgspec.Meta(ge=60, le=7 * 86400)] = 3600
    sandbox_git_pull_on_restore: bool = False
    sandbox_git_pull_cadence_seconds: int = 0
    sandbox_image_ref: str = "ghcr.io/proliferate/sandbox:latest"
    sandbox_image_version: str = "1"
    # The gateway URL as reachable from inside sandboxes (tool callbacks, actions).
    sandbox_callback_base_url: str = "http://127.0.0.1:8080"
    sandbox_allow_insecure_git_urls: bool = False
    sandbox_agent_ready_timeout_seconds: Seconds = 30.0
    sandbox_operation_lease_seconds: Seconds = 600.0
    sandbox_ensure_deadline_seconds: Seconds = 300.0
    # Background work (§5.8); shorter in tests.
    sandbox_reaper_interval_seconds: Seconds = 60.0
    sandbox_metering_interval_seconds: Seconds = 30.0
    sandbox_orphan_sweep_interval_seconds: Seconds = 600.0
    sandbox_orphan_min_age_seconds: Seconds = 600.0
    sandbox_artifact_gc_interval_seconds: Seconds = 300.0
    sandbox_lost_confirm_seconds: Seconds = 60.0

    modal_token_id: AnySecret | None = None
    modal_token_secret: AnySecret | None = None
    modal_app_name: str = "proliferate-sandboxes"
    modal_app_suffix: str = ""
    e2b_api_key: AnySecret | None = None
    e2b_domain: str = ""
    e2b_template: str = "proliferate-sandbox"

    sandbox_local_root: str = "/var/lib/proliferate/sandbox"
    sandbox_local_isolation: Literal["auto", "namespaced", "bwrap", "process"] = "auto"
    sandbox_local_allow_unisolated: bool = False
    sandbox_local_port_range: Annotated[str, msgspec.Meta(pattern=r"^\d{2,5}-\d{2,5}$")] = "41000-48999"
    sandbox_local_max_sandboxes: Annotated[int, msgspec.Meta(ge=1, le=512)] = 8
    sandbox_local_max_disk_mb: Annotated[int, msgspec.Meta(ge=16)] = 20480
    # Replaces the agent's argv (tests: the fake agent); `{port}` is the agent port.
    sandbox_local_agent_command: str = ""
    sandbox_local_host_id: str = ""
    sandbox_local_host_alias: str = "10.0.2.2"
    sandbox_local_uid: Annotated[int, msgspec.Meta(ge=1)] | None = None
    # The interpreter that runs `proliferate.sandbox_mcp` inside local sandboxes.
    sandbox_local_python: str = ""
    opencode_bin: str = ""
    # The pinned @opencode-ai/plugin install (node_modules parent) copied into the base layer.
    sandbox_local_plugin_dir: str = ""

    def enabled_providers(self) -> tuple[str, ...]:
        names = [n.strip() for n in self.sandbox_enabled_providers.split(",") if n.strip()]
        if self.default_sandbox_provider not in names:
            names.insert(0, self.default_sandbox_provider)
        return tuple(dict.fromkeys(names))

    def port_range(self) -> tuple[int, int]:
        low, high = (int(p) for p in self.sandbox_local_port_range.split("-"))
        return low, high

    def modal_app(self) -> str:
        return (
            f"{self.modal_app_name}-{self.modal_app_suffix}" if self.modal_app_suffix else self.modal_app_name
        )


class ProviderConfigError(Exception):
    """An enabled provider whose settings cannot work; the message is the one line shown."""


_MODAL_ID = re.compile(r"^ak-[A-Za-z0-9]+$")
_MODAL_SECRET = re.compile(r"^as-[A-Za-z0-9]+$")


def check_provider_settings(settings: Settings) -> None:
    """Refuse to start with an enabled provider that lacks credentials (§8.2)."""
    enabled = settings.enabled_providers()
    unknown = [p for p in enabled if p not in ("local", "modal", "e2b")]
    if unknown:
        raise ProviderConfigError(f"SANDBOX_ENABLED_PROVIDERS names unknown provider {unknown[0]!r}")
    if "modal" in enabled:
        token_id, secret = settings.modal_token_id, settings.modal_token_secret
        if not token_id or not secret:
            raise ProviderConfigError(
                "provider modal is enabled but MODAL_TOKEN_ID/MODAL_TOKEN_SECRET are missing"
            )
        if _MODAL_SECRET.match(token_id) and _MODAL_ID.match(secret):
            raise ProviderConfigError("MODAL_TOKEN_ID and MODAL_TOKEN_SECRET are swapped (ak-… is the id)")
        if not _MODAL_ID.match(token_id) or not _MODAL_SECRET.match(secret):
            raise ProviderConfigError("MODAL_TOKEN_ID must look like ak-… and MODAL_TOKEN_SECRET like as-…")
    if "e2b" in enabled and not settings.e2b_api_key:
        raise ProviderConfigError("provider e2b is enabled but E2B_API_KEY is missing")
    low, high = settings.port_range()
    if "local" in enabled and (low < 1024 or high > 65535 or high - low + 1 < 8):
        raise ProviderConfigError(
            "SANDBOX_LOCAL_PORT_RANGE must hold at least one block of 8 ports in 1024-65535"
        )
