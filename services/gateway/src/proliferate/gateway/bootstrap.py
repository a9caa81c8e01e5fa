"""Composition root of the gateway service: its settings and how its parts are assembled."""

from __future__ import annotations

from typing import Annotated

import msgspec
from proliferate.gateway import app, grpc_server, worker
from proliferate.gateway.edge.auth.client import AuthRpc
from proliferate.gateway.edge.context import EdgeContext
from proliferate.kit.runtime import HttpEdge, Runtime, ServiceDefinition, ServiceParts, run_main
from proliferate.kit.settings import ListenPort, ServiceSettings


class Settings(ServiceSettings, frozen=True, kw_only=True):
    """The gateway service's environment (besides what every service reads)."""

    gateway_host: str = "127.0.0.1"
    gateway_port: ListenPort = 8080
    app_url: str = "http://localhost:3000"  # the product UI's origin: CSRF check, redirects
    cors_origins: str = ""  # comma-separated origins allowed besides APP_URL (never `*`)
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024
    auth_cache_ttl_seconds: Annotated[float, msgspec.Meta(ge=0, le=30)] = 30.0
    # None: Secure in production or when APP_URL is https; off for plain-http development.
    sign_in_cookie_secure: bool | None = None

    def cookie_secure(self) -> bool:
        if self.sign_in_cookie_secure is not None:
            return self.sign_in_cookie_secure
        return self.proliferate_env == "production" or self.app_url.startswith("https://")

    def cors(self) -> tuple[str, ...]:
        origins = (o.strip() for o in self.cors_origins.split(","))
        return tuple(o for o in origins if o and o != "*")


def build_edge(runtime: Runtime[Settings]) -> EdgeContext:
    settings = runtime.settings
    return EdgeContext.build(
        AuthRpc(runtime.clients("auth")),
        app_url=settings.app_url,
        cors_origins=settings.cors(),
        cookie_secure=settings.cookie_secure(),
        cache_ttl_seconds=settings.auth_cache_ttl_seconds,
        js=runtime.js,
    )


async def assemble(runtime: Runtime[Settings]) -> ServiceParts:
    edge = build_edge(runtime)
    return ServiceParts(
        register_grpc=grpc_server.registrar(runtime),
        consumers=worker.consumers(runtime),
        jobs=worker.jobs(runtime),
        http=HttpEdge(
            app.create_app(runtime, edge), runtime.settings.gateway_host, runtime.settings.gateway_port
        ),
    )


DEFINITION = ServiceDefinition(name="gateway", settings_type=Settings, assemble=assemble)


def main() -> None:
    run_main(DEFINITION)
