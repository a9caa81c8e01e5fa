"""Composition root of the gateway service: its settings and how its parts are assembled."""

from __future__ import annotations

from proliferate.gateway import app, grpc_server, worker
from proliferate.kit.runtime import HttpEdge, Runtime, ServiceDefinition, ServiceParts, run_main
from proliferate.kit.settings import ListenPort, ServiceSettings


class Settings(ServiceSettings, frozen=True, kw_only=True):
    """The gateway service's environment (besides what every service reads)."""

    gateway_host: str = "127.0.0.1"
    gateway_port: ListenPort = 8080


async def assemble(runtime: Runtime[Settings]) -> ServiceParts:
    return ServiceParts(
        register_grpc=grpc_server.registrar(runtime),
        consumers=worker.consumers(runtime),
        jobs=worker.jobs(runtime),
        http=HttpEdge(app.create_app(runtime), runtime.settings.gateway_host, runtime.settings.gateway_port),
    )


DEFINITION = ServiceDefinition(name="gateway", settings_type=Settings, assemble=assemble)


def main() -> None:
    run_main(DEFINITION)
