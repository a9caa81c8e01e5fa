"""The llm_proxy service's own HTTP edge: the OpenAI- and Anthropic-compatible LLM endpoint for sandboxes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from proliferate.kit import http
from proliferate.llm_proxy.llm_request.controllers import ROUTES, UNBOUNDED, LlmEdge

if TYPE_CHECKING:
    from proliferate.kit.runtime import Runtime
    from proliferate.llm_proxy.bootstrap import Parts, Settings


def create_app(runtime: Runtime[Settings], parts: Parts) -> LlmEdge:
    requests = parts.requests

    async def models_check() -> str:
        return "ok" if parts.catalog.routes else "NO_MODELS"

    async def serving_check() -> str:
        return "DRAINING" if requests.draining else "ok"

    checks = {
        "database": runtime.database_check,
        "nats": runtime.nats_check,
        "models": models_check,
        "edge": serving_check,
    }
    app = http.create_app(
        service="llm_proxy",
        route_handlers=[*ROUTES, http.readiness_route(checks)],
        on_startup=[requests.upstream.start, requests.blocks.start, requests.writer.start],
        on_shutdown=[requests.writer.stop, requests.upstream.stop, requests.blocks.stop],
        max_body_bytes=UNBOUNDED,
        state={
            "runtime": runtime,
            "llm_requests": requests,
            "max_body_bytes": runtime.settings.llm_proxy_max_body_bytes,
        },
    )
    return LlmEdge(app, requests, runtime.settings.llm_proxy_max_body_bytes)
