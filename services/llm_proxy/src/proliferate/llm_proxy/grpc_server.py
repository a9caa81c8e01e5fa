"""gRPC entry point of the llm_proxy service: which servicers it serves, and to whom."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from proliferate.kit.rpc import GrpcServer
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2, llm_proxy_pb2_grpc

if TYPE_CHECKING:
    from proliferate.kit.runtime import Runtime
    from proliferate.llm_proxy.bootstrap import Settings

SERVICE_NAME = llm_proxy_pb2.DESCRIPTOR.services_by_name["LlmProxyService"].full_name

# method -> calling services (contracts.md §a); "*" is the default for unlisted methods.
ALLOWED_CALLERS: dict[str, frozenset[str]] = {}


class LlmProxyServiceServicer(llm_proxy_pb2_grpc.LlmProxyServiceServicer):
    """Methods land here (as thin adapters over the domain services) with their issues."""


def registrar(runtime: Runtime[Settings]) -> Callable[[GrpcServer], None]:
    def register(server: GrpcServer) -> None:
        server.register(
            SERVICE_NAME,
            llm_proxy_pb2_grpc.add_LlmProxyServiceServicer_to_server,
            LlmProxyServiceServicer(),
            ALLOWED_CALLERS,
        )

    return register
