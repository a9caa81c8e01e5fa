"""gRPC entry point of the actions service: which servicers it serves, and to whom."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from proliferate.kit.rpc import GrpcServer
from proliferate.protos.actions.v1 import actions_pb2, actions_pb2_grpc

if TYPE_CHECKING:
    from proliferate.actions.bootstrap import Settings
    from proliferate.kit.runtime import Runtime

SERVICE_NAME = actions_pb2.DESCRIPTOR.services_by_name["ActionsService"].full_name

# method -> calling services (contracts.md §a); "*" is the default for unlisted methods.
ALLOWED_CALLERS: dict[str, frozenset[str]] = {}


class ActionsServiceServicer(actions_pb2_grpc.ActionsServiceServicer):
    """Methods land here (as thin adapters over the domain services) with their issues."""


def registrar(runtime: Runtime[Settings]) -> Callable[[GrpcServer], None]:
    def register(server: GrpcServer) -> None:
        server.register(
            SERVICE_NAME,
            actions_pb2_grpc.add_ActionsServiceServicer_to_server,
            ActionsServiceServicer(),
            ALLOWED_CALLERS,
        )

    return register
