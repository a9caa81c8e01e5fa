"""The llm_proxy service's own HTTP edge: the OpenAI- and Anthropic-compatible LLM endpoint for sandboxes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import Litestar
from proliferate.kit import http

if TYPE_CHECKING:
    from proliferate.kit.runtime import Runtime
    from proliferate.llm_proxy.bootstrap import Settings


def create_app(runtime: Runtime[Settings]) -> Litestar:
    checks = {"database": runtime.database_check, "nats": runtime.nats_check}
    return http.create_app(
        service="llm_proxy",
        route_handlers=[http.readiness_route(checks)],
        state={"runtime": runtime},
    )
