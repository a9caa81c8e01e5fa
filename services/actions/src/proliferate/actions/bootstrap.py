"""Composition root of the actions service: its settings and how its parts are assembled."""

from __future__ import annotations

from proliferate.actions import grpc_server, worker
from proliferate.kit.runtime import Runtime, ServiceDefinition, ServiceParts, run_main
from proliferate.kit.settings import ServiceSettings


class Settings(ServiceSettings, frozen=True, kw_only=True):
    """The actions service's environment (besides what every service reads)."""


async def assemble(runtime: Runtime[Settings]) -> ServiceParts:
    return ServiceParts(
        register_grpc=grpc_server.registrar(runtime),
        consumers=worker.consumers(runtime),
        jobs=worker.jobs(runtime),
    )


DEFINITION = ServiceDefinition(name="actions", settings_type=Settings, assemble=assemble)


def main() -> None:
    run_main(DEFINITION)
