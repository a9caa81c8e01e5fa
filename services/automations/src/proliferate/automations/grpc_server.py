"""gRPC entry point of the automations service: which servicers it serves, and to whom."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from proliferate.kit.rpc import GrpcServer
from proliferate.protos.automations.v1 import automations_pb2, automations_pb2_grpc

if TYPE_CHECKING:
    from proliferate.automations.bootstrap import Settings
    from proliferate.kit.runtime import Runtime

SERVICE_NAME = automations_pb2.DESCRIPTOR.services_by_name["AutomationsService"].full_name

# method -> calling services (contracts.md §a); "*" is the default for unlisted methods.
ALLOWED_CALLERS: dict[str, frozenset[str]] = {}


class AutomationsServiceServicer(automations_pb2_grpc.AutomationsServiceServicer):
    """Methods land here (as thin adapters over the domain services) with their issues."""


def registrar(runtime: Runtime[Settings]) -> Callable[[GrpcServer], None]:
    def register(server: GrpcServer) -> None:
        server.register(
            SERVICE_NAME,
            automations_pb2_grpc.add_AutomationsServiceServicer_to_server,
            AutomationsServiceServicer(),
            ALLOWED_CALLERS,
        )

    return register
