from __future__ import annotations

from typing import Any

from proliferate.auth.oauth import service
from proliferate.auth.rpc import ServicerBase, accepted, client_meta
from proliferate.auth.sign_in.servicer import sign_in_result
from proliferate.protos.auth.v1 import auth_pb2 as pb


class OAuthServicer(ServicerBase):
    async def BeginOAuth(self, request: pb.BeginOAuthRequest, context: Any) -> pb.BeginOAuthResponse:
        async with self.uow() as session:
            url = await service.begin_oauth(session, self.ctx, request.provider, request.redirect_after)
        return pb.BeginOAuthResponse(authorize_url=url)

    async def CompleteOAuth(self, request: pb.CompleteOAuthRequest, context: Any) -> pb.SignInResult:
        async with self.uow() as session:
            outcome = await service.complete_oauth(
                session,
                self.ctx,
                request.provider,
                code=request.code,
                state=request.state,
                client=client_meta(request.client),
            )
        done = accepted(outcome)
        result = sign_in_result(done.issued)
        result.redirect_after = done.redirect_after
        return result
