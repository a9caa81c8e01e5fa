"""gRPC entry point of the integrations service: which servicers it serves, and to whom."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from proliferate.kit.rpc import GrpcServer
from proliferate.protos.integrations.v1 import integrations_pb2, integrations_pb2_grpc

if TYPE_CHECKING:
    from proliferate.integrations.bootstrap import Settings
    from proliferate.kit.runtime import Runtime

SERVICE_NAME = integrations_pb2.DESCRIPTOR.services_by_name["IntegrationsService"].full_name

# method -> calling services (contracts.md §a); "*" is the default for unlisted methods.
ALLOWED_CALLERS: dict[str, frozenset[str]] = {}


class IntegrationsServiceServicer(integrations_pb2_grpc.IntegrationsServiceServicer):
    """Methods land here (as thin adapters over the domain services) with their issues."""


def registrar(runtime: Runtime[Settings]) -> Callable[[GrpcServer], None]:
    def register(server: GrpcServer) -> None:
        server.register(
            SERVICE_NAME,
            integrations_pb2_grpc.add_IntegrationsServiceServicer_to_server,
            IntegrationsServiceServicer(),
            ALLOWED_CALLERS,
        )

    return register
