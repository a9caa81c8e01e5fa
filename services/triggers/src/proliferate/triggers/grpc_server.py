"""gRPC entry point of the triggers service: which servicers it serves, and to whom."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from proliferate.kit.rpc import GrpcServer
from proliferate.protos.triggers.v1 import triggers_pb2, triggers_pb2_grpc

if TYPE_CHECKING:
    from proliferate.kit.runtime import Runtime
    from proliferate.triggers.bootstrap import Settings

SERVICE_NAME = triggers_pb2.DESCRIPTOR.services_by_name["TriggersService"].full_name

# method -> calling services (contracts.md §a); "*" is the default for unlisted methods.
ALLOWED_CALLERS: dict[str, frozenset[str]] = {}


class TriggersServiceServicer(triggers_pb2_grpc.TriggersServiceServicer):
    """Methods land here (as thin adapters over the domain services) with their issues."""


def registrar(runtime: Runtime[Settings]) -> Callable[[GrpcServer], None]:
    def register(server: GrpcServer) -> None:
        server.register(
            SERVICE_NAME,
            triggers_pb2_grpc.add_TriggersServiceServicer_to_server,
            TriggersServiceServicer(),
            ALLOWED_CALLERS,
        )

    return register
