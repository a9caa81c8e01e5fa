"""gRPC entry point of the gateway service: which servicers it serves, and to whom."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from proliferate.kit.rpc import GrpcServer
from proliferate.protos.gateway.v1 import gateway_pb2, gateway_pb2_grpc

if TYPE_CHECKING:
    from proliferate.gateway.bootstrap import Settings
    from proliferate.kit.runtime import Runtime

SERVICE_NAME = gateway_pb2.DESCRIPTOR.services_by_name["SessionService"].full_name

# method -> calling services (contracts.md §a); "*" is the default for unlisted methods.
ALLOWED_CALLERS: dict[str, frozenset[str]] = {}


class SessionServiceServicer(gateway_pb2_grpc.SessionServiceServicer):
    """Methods land here (as thin adapters over the domain services) with their issues."""


def registrar(runtime: Runtime[Settings]) -> Callable[[GrpcServer], None]:
    def register(server: GrpcServer) -> None:
        server.register(
            SERVICE_NAME,
            gateway_pb2_grpc.add_SessionServiceServicer_to_server,
            SessionServiceServicer(),
            ALLOWED_CALLERS,
        )

    return register
