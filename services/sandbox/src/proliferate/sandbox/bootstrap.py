"""Composition root of the sandbox service: its settings and how its parts are assembled.

Tests assemble the same service with fakes at the SDK seam: `definition(modal_port=…,
e2b_port=…)`; nothing else differs from production.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from proliferate.kit.runtime import Runtime, ServiceDefinition, ServiceParts, run_main
from proliferate.kit.settings import exit_with_line, load_settings_or_exit
from proliferate.sandbox import grpc_server, worker
from proliferate.sandbox.context import SandboxContext
from proliferate.sandbox.providers.base import SandboxProvider
from proliferate.sandbox.providers.e2b import E2BPort, E2BProvider, SdkE2BPort
from proliferate.sandbox.providers.local import LocalConfig, LocalProvider
from proliferate.sandbox.providers.local.isolation import IsolationUnavailable, detect
from proliferate.sandbox.providers.local.runtime import RuntimeUnavailable
from proliferate.sandbox.providers.modal import ModalPort, ModalProvider, SdkModalPort
from proliferate.sandbox.providers.registry import ProviderRegistry
from proliferate.sandbox.settings import ProviderConfigError, Settings, check_provider_settings

__all__ = ["DEFINITION", "ProviderConfigError", "Settings", "build_providers", "definition", "main"]


def _local_uid(settings: Settings) -> int | None:
    if os.geteuid() != 0:
        return None
    return settings.sandbox_local_uid or 1000


def _opencode_bin(settings: Settings) -> Path | None:
    configured = settings.opencode_bin or os.environ.get("OPENCODE_BIN", "")
    if configured:
        return Path(configured)
    found = shutil.which("opencode")
    return Path(found) if found else None


def local_provider(settings: Settings) -> LocalProvider:
    uid = _local_uid(settings)
    try:
        isolation = detect(
            settings.sandbox_local_isolation,
            allow_unisolated=settings.sandbox_local_allow_unisolated,
            uid=uid,
        )
    except IsolationUnavailable as exc:
        raise ProviderConfigError(str(exc)) from None
    low, high = settings.port_range()
    plugin = settings.sandbox_local_plugin_dir
    provider = LocalProvider(
        LocalConfig(
            root=Path(settings.sandbox_local_root).resolve(),
            isolation=isolation,
            uid=uid,
            host_id=settings.sandbox_local_host_id or socket.gethostname(),
            port_low=low,
            port_high=high,
            max_sandboxes=settings.sandbox_local_max_sandboxes,
            max_disk_mb=settings.sandbox_local_max_disk_mb,
            python=settings.sandbox_local_python,
            opencode_bin=_opencode_bin(settings),
            plugin_dir=Path(plugin) if plugin else None,
        )
    )
    provider.agent_command = bool(settings.sandbox_local_agent_command)
    try:
        provider.prepare()
    except RuntimeUnavailable as exc:
        raise ProviderConfigError(str(exc)) from None
    return provider


def build_providers(
    settings: Settings, *, modal_port: ModalPort | None = None, e2b_port: E2BPort | None = None
) -> ProviderRegistry:
    """The enabled providers; raises `ProviderConfigError` with the operator's one line."""
    check_provider_settings(settings)
    providers: dict[str, SandboxProvider] = {}
    for name in settings.enabled_providers():
        if name == "local":
            providers[name] = local_provider(settings)
        elif name == "modal":
            assert settings.modal_token_id and settings.modal_token_secret
            port = modal_port or SdkModalPort(settings.modal_token_id, settings.modal_token_secret)
            providers[name] = ModalProvider(
                port, app_name=settings.modal_app(), image_ref=settings.sandbox_image_ref
            )
        elif name == "e2b":
            assert settings.e2b_api_key
            e2b = e2b_port or SdkE2BPort(settings.e2b_api_key, settings.e2b_domain or None)
            providers[name] = E2BProvider(e2b, template=settings.e2b_template, domain=settings.e2b_domain)
    return ProviderRegistry(providers, settings.default_sandbox_provider)


def definition(
    *,
    modal_port: ModalPort | None = None,
    e2b_port: E2BPort | None = None,
    contexts: list[SandboxContext] | None = None,
) -> ServiceDefinition[Settings]:
    """The service; tests pass SDK fakes and collect the assembled context (`contexts`)."""

    async def assemble(runtime: Runtime[Settings]) -> ServiceParts:
        providers = build_providers(runtime.settings, modal_port=modal_port, e2b_port=e2b_port)
        ctx = SandboxContext(runtime.db, runtime.settings, providers)
        if contexts is not None:
            contexts.append(ctx)
        return ServiceParts(
            register_grpc=grpc_server.registrar(ctx),
            consumers=worker.consumers(ctx),
            jobs=worker.jobs(ctx),
        )

    return ServiceDefinition(name="sandbox", settings_type=Settings, assemble=assemble)


DEFINITION = definition()


def main() -> None:
    # A provider that cannot work stops the process with one line before anything starts.
    settings = load_settings_or_exit(Settings, "sandbox")
    try:
        check_provider_settings(settings)
        if "local" in settings.enabled_providers():
            detect(
                settings.sandbox_local_isolation,
                allow_unisolated=settings.sandbox_local_allow_unisolated,
                uid=_local_uid(settings),
            )
    except (ProviderConfigError, IsolationUnavailable) as exc:
        exit_with_line(f"sandbox: {exc}")
    run_main(DEFINITION)
