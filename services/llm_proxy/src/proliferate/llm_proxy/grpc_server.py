"""gRPC entry point of the llm_proxy service: which servicers it serves, and to whom."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from proliferate.kit.rpc import GrpcServer
from proliferate.llm_proxy.model_route.servicer import ModelServicer
from proliferate.llm_proxy.spend_record.servicer import SpendServicer
from proliferate.llm_proxy.virtual_key.servicer import VirtualKeyServicer
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2, llm_proxy_pb2_grpc

if TYPE_CHECKING:
    from proliferate.kit.runtime import Runtime
    from proliferate.llm_proxy.bootstrap import Parts, Settings

SERVICE_NAME = llm_proxy_pb2.DESCRIPTOR.services_by_name["LlmProxyService"].full_name

# method -> calling services (contracts.md §a, llm-proxy.md §4.1).
ALLOWED_CALLERS: dict[str, frozenset[str]] = {
    "IssueVirtualKey": frozenset({"gateway", "automations"}),
    "RevokeVirtualKeys": frozenset({"gateway", "automations"}),
    "GetVirtualKey": frozenset({"gateway", "automations", "billing"}),
    "GetSpend": frozenset({"gateway", "automations", "billing"}),
    "ListModels": frozenset({"gateway", "automations", "billing"}),
}


class LlmProxyServiceServicer(
    VirtualKeyServicer, SpendServicer, ModelServicer, llm_proxy_pb2_grpc.LlmProxyServiceServicer
):
    def __init__(self, runtime: Runtime[Settings], parts: Parts) -> None:
        self.db = runtime.db
        self.keys = parts.keys
        self.catalog = parts.catalog
        self.base_url = runtime.settings.public_url


def registrar(runtime: Runtime[Settings], parts: Parts) -> Callable[[GrpcServer], None]:
    def register(server: GrpcServer) -> None:
        server.register(
            SERVICE_NAME,
            llm_proxy_pb2_grpc.add_LlmProxyServiceServicer_to_server,
            LlmProxyServiceServicer(runtime, parts),
            ALLOWED_CALLERS,
        )

    return register
