"""Composition root of the llm_proxy service: its settings and how its parts are assembled."""

from __future__ import annotations

from proliferate.kit.runtime import HttpEdge, Runtime, ServiceDefinition, ServiceParts, run_main
from proliferate.kit.settings import ListenPort, ServiceSettings
from proliferate.llm_proxy import app, grpc_server, worker


class Settings(ServiceSettings, frozen=True, kw_only=True):
    """The llm_proxy service's environment (besides what every service reads)."""

    llm_proxy_host: str = "127.0.0.1"
    llm_proxy_port: ListenPort = 4000


async def assemble(runtime: Runtime[Settings]) -> ServiceParts:
    return ServiceParts(
        register_grpc=grpc_server.registrar(runtime),
        consumers=worker.consumers(runtime),
        jobs=worker.jobs(runtime),
        http=HttpEdge(
            app.create_app(runtime), runtime.settings.llm_proxy_host, runtime.settings.llm_proxy_port
        ),
    )


DEFINITION = ServiceDefinition(name="llm_proxy", settings_type=Settings, assemble=assemble)


def main() -> None:
    run_main(DEFINITION)
