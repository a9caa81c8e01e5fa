"""gRPC entry point of the sandbox service: which servicers it serves, and to whom."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from proliferate.kit.rpc import GrpcServer
from proliferate.protos.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

if TYPE_CHECKING:
    from proliferate.kit.runtime import Runtime
    from proliferate.sandbox.bootstrap import Settings

SERVICE_NAME = sandbox_pb2.DESCRIPTOR.services_by_name["SandboxService"].full_name

# method -> calling services (contracts.md §a); "*" is the default for unlisted methods.
ALLOWED_CALLERS: dict[str, frozenset[str]] = {}


class SandboxServiceServicer(sandbox_pb2_grpc.SandboxServiceServicer):
    """Methods land here (as thin adapters over the domain services) with their issues."""


def registrar(runtime: Runtime[Settings]) -> Callable[[GrpcServer], None]:
    def register(server: GrpcServer) -> None:
        server.register(
            SERVICE_NAME,
            sandbox_pb2_grpc.add_SandboxServiceServicer_to_server,
            SandboxServiceServicer(),
            ALLOWED_CALLERS,
        )

    return register
