"""gRPC entry point of the repos service: which servicers it serves, and to whom."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from proliferate.kit.rpc import GrpcServer
from proliferate.protos.repos.v1 import repos_pb2, repos_pb2_grpc

if TYPE_CHECKING:
    from proliferate.kit.runtime import Runtime
    from proliferate.repos.bootstrap import Settings

SERVICE_NAME = repos_pb2.DESCRIPTOR.services_by_name["ReposService"].full_name

# method -> calling services (contracts.md §a); "*" is the default for unlisted methods.
ALLOWED_CALLERS: dict[str, frozenset[str]] = {}


class ReposServiceServicer(repos_pb2_grpc.ReposServiceServicer):
    """Methods land here (as thin adapters over the domain services) with their issues."""


def registrar(runtime: Runtime[Settings]) -> Callable[[GrpcServer], None]:
    def register(server: GrpcServer) -> None:
        server.register(
            SERVICE_NAME,
            repos_pb2_grpc.add_ReposServiceServicer_to_server,
            ReposServiceServicer(),
            ALLOWED_CALLERS,
        )

    return register
