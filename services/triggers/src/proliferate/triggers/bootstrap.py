"""Composition root of the triggers service: its settings and how its parts are assembled."""

from __future__ import annotations

from proliferate.kit.runtime import HttpEdge, Runtime, ServiceDefinition, ServiceParts, run_main
from proliferate.kit.settings import ListenPort, ServiceSettings
from proliferate.triggers import app, grpc_server, worker


class Settings(ServiceSettings, frozen=True, kw_only=True):
    """The triggers service's environment (besides what every service reads)."""

    triggers_host: str = "127.0.0.1"
    triggers_port: ListenPort = 8090


async def assemble(runtime: Runtime[Settings]) -> ServiceParts:
    return ServiceParts(
        register_grpc=grpc_server.registrar(runtime),
        consumers=worker.consumers(runtime),
        jobs=worker.jobs(runtime),
        http=HttpEdge(
            app.create_app(runtime), runtime.settings.triggers_host, runtime.settings.triggers_port
        ),
    )


DEFINITION = ServiceDefinition(name="triggers", settings_type=Settings, assemble=assemble)


def main() -> None:
    run_main(DEFINITION)
