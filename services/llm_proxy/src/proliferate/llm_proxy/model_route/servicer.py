"""gRPC `ListModels`: the routed public names, aliases and availability."""

from __future__ import annotations

from typing import Any

from proliferate.llm_proxy.model_route.catalog import ModelCatalog
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2 as pb


class ModelServicer:
    catalog: ModelCatalog

    async def ListModels(self, request: pb.ListModelsRequest, context: Any) -> pb.ListModelsResponse:
        return pb.ListModelsResponse(
            models=[
                pb.RoutedModel(
                    name=route.name,
                    aliases=list(route.aliases),
                    available=route.available,
                    upstream_model=route.upstream_model,
                )
                for route in self.catalog.routes.values()
            ]
        )
