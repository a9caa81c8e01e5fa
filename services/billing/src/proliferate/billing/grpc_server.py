"""gRPC entry point of the billing service: which servicers it serves, and to whom."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from proliferate.kit.rpc import GrpcServer
from proliferate.protos.billing.v1 import billing_pb2, billing_pb2_grpc

if TYPE_CHECKING:
    from proliferate.billing.bootstrap import Settings
    from proliferate.kit.runtime import Runtime

SERVICE_NAME = billing_pb2.DESCRIPTOR.services_by_name["BillingService"].full_name

# method -> calling services (contracts.md §a); "*" is the default for unlisted methods.
ALLOWED_CALLERS: dict[str, frozenset[str]] = {}


class BillingServiceServicer(billing_pb2_grpc.BillingServiceServicer):
    """Methods land here (as thin adapters over the domain services) with their issues."""


def registrar(runtime: Runtime[Settings]) -> Callable[[GrpcServer], None]:
    def register(server: GrpcServer) -> None:
        server.register(
            SERVICE_NAME,
            billing_pb2_grpc.add_BillingServiceServicer_to_server,
            BillingServiceServicer(),
            ALLOWED_CALLERS,
        )

    return register
