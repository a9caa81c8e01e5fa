"""The gateway's HTTP edge: the product API (`/v1/*`), probes and the OpenAPI document."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Litestar
from proliferate.kit import http
from proliferate.kit.topology import SERVICES

if TYPE_CHECKING:
    from proliferate.gateway.bootstrap import Settings
    from proliferate.kit.runtime import Runtime


def create_app(runtime: Runtime[Settings]) -> Litestar:
    # Ready only when every service of the platform answers gRPC health SERVING.
    checks = {service: runtime.clients(service).health for service in SERVICES}
    return http.create_app(
        service="gateway",
        route_handlers=[http.readiness_route(checks)],
        openapi_title="Proliferate API",
        state={"runtime": runtime},
    )
