"""gRPC entry point of the auth service: which servicers it serves, and to whom."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from proliferate.kit.rpc import GrpcServer
from proliferate.protos.auth.v1 import auth_pb2, auth_pb2_grpc

if TYPE_CHECKING:
    from proliferate.auth.bootstrap import Settings
    from proliferate.kit.runtime import Runtime

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name

# method -> calling services (contracts.md §a); "*" is the default for unlisted methods.
ALLOWED_CALLERS: dict[str, frozenset[str]] = {}


class AuthServiceServicer(auth_pb2_grpc.AuthServiceServicer):
    """Methods land here (as thin adapters over the domain services) with their issues."""


def registrar(runtime: Runtime[Settings]) -> Callable[[GrpcServer], None]:
    def register(server: GrpcServer) -> None:
        server.register(
            SERVICE_NAME,
            auth_pb2_grpc.add_AuthServiceServicer_to_server,
            AuthServiceServicer(),
            ALLOWED_CALLERS,
        )

    return register
