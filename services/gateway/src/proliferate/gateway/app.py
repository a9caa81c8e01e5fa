"""The gateway's HTTP edge: the product API (`/v1/*`), probes and the OpenAPI document."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Litestar
from proliferate.gateway.edge.auth.controllers import ROUTES as AUTH_ROUTES
from proliferate.gateway.edge.authentication.dependencies import DEPENDENCIES, check_origin
from proliferate.gateway.edge.context import EdgeContext
from proliferate.kit import http
from proliferate.kit.topology import SERVICES

if TYPE_CHECKING:
    from proliferate.gateway.bootstrap import Settings
    from proliferate.kit.runtime import Runtime


def create_app(runtime: Runtime[Settings], edge: EdgeContext) -> Litestar:
    # Ready only when every service of the platform answers gRPC health SERVING.
    checks = {service: runtime.clients(service).health for service in SERVICES}
    settings = runtime.settings
    return http.create_app(
        service="gateway",
        route_handlers=[http.readiness_route(checks), *AUTH_ROUTES],
        openapi_title="Proliferate API",
        state={"runtime": runtime, "edge": edge},
        on_startup=[edge.start],
        on_shutdown=[edge.stop],
        max_body_bytes=settings.max_body_bytes,
        cors_origins=[settings.app_url, *settings.cors()],
        dependencies=DEPENDENCIES,
        before_request=check_origin,
    )
