"""`/v1/api-keys/*`: the acting organization's API keys."""

from __future__ import annotations

from typing import Any

from litestar import Request, delete, get, post
from litestar.params import FromPath, JSONBody
from proliferate.gateway.edge.auth import schemas as s
from proliferate.gateway.edge.auth import serial
from proliferate.gateway.edge.authentication.dependencies import Auth, Caller, edge_of
from proliferate.gateway.edge.routes import Tenancy, documented
from proliferate.protos.auth.v1 import auth_pb2 as pb


@get("/v1/api-keys", operation_id="list_api_keys", **documented(Tenancy.ACTING_ORG))
async def list_api_keys(principal: Caller, auth: Auth) -> s.ApiKeysOut:
    reply = await auth("ListApiKeys", principal=principal)
    return s.ApiKeysOut(api_keys=[serial.api_key(k) for k in reply.api_keys])


@post("/v1/api-keys", operation_id="create_api_key", status_code=201, **documented(Tenancy.ACTING_ORG))
async def create_api_key(
    data: JSONBody[s.ApiKeyCreateBody], principal: Caller, auth: Auth
) -> s.CreatedApiKeyOut:
    request = pb.CreateApiKeyRequest(name=data.name)
    if data.expires_in_days is not None:
        request.expires_in_days = data.expires_in_days
    reply = await auth("CreateApiKey", request, principal=principal)
    return s.CreatedApiKeyOut(api_key=serial.api_key(reply.api_key), key=reply.key)


@delete("/v1/api-keys/{api_key_id:str}", operation_id="revoke_api_key", **documented(Tenancy.ORG_RESOURCE))
async def revoke_api_key(
    request: Request[Any, Any, Any], api_key_id: FromPath[str], principal: Caller, auth: Auth
) -> None:
    await auth("RevokeApiKey", pb.ApiKeyRef(api_key_id=api_key_id), principal=principal)
    edge_of(request).cache.drop_credential(api_key_id)  # here at once; other replicas on the event


ROUTES = [list_api_keys, create_api_key, revoke_api_key]
