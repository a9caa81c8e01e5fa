"""gRPC entry point of the sandbox service: which servicers it serves, and to whom (§7)."""

from __future__ import annotations

from collections.abc import Callable

from proliferate.kit.rpc import GrpcServer
from proliferate.protos.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc
from proliferate.sandbox.context import SandboxContext
from proliferate.sandbox.sandbox.servicer import SandboxServicer

SERVICE_NAME = sandbox_pb2.DESCRIPTOR.services_by_name["SandboxService"].full_name

# method -> calling services (contracts.md §a); "*" is the default for unlisted methods.
ALLOWED_CALLERS: dict[str, frozenset[str]] = {
    "*": frozenset({"gateway"}),
    "DescribeBaseSnapshot": frozenset({"repos"}),
    "CreateBaseSnapshot": frozenset({"repos"}),
}


def registrar(ctx: SandboxContext) -> Callable[[GrpcServer], None]:
    def register(server: GrpcServer) -> None:
        server.register(
            SERVICE_NAME,
            sandbox_pb2_grpc.add_SandboxServiceServicer_to_server,
            SandboxServicer(ctx),
            ALLOWED_CALLERS,
        )

    return register
