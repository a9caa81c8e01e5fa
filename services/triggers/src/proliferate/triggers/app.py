"""The triggers service's own HTTP edge: webhook ingress for external providers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Litestar
from proliferate.kit import http

if TYPE_CHECKING:
    from proliferate.kit.runtime import Runtime
    from proliferate.triggers.bootstrap import Settings


def create_app(runtime: Runtime[Settings]) -> Litestar:
    checks = {"database": runtime.database_check, "nats": runtime.nats_check}
    return http.create_app(
        service="triggers",
        route_handlers=[http.readiness_route(checks)],
        state={"runtime": runtime},
    )
