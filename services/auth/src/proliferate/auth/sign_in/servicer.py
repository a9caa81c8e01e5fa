from __future__ import annotations

from typing import Any

from google.protobuf.empty_pb2 import Empty
from proliferate.auth import serial
from proliferate.auth.api_key.service import authenticate_api_key
from proliferate.auth.rpc import ServicerBase, accepted, client_meta
from proliferate.auth.sign_in import service
from proliferate.auth.sign_in.service import Issued
from proliferate.kit.rpc import current_principal
from proliferate.protos.auth.v1 import auth_pb2 as pb


def sign_in_result(issued: Issued) -> pb.SignInResult:
    return pb.SignInResult(
        token=issued.token,
        expires_at=serial.ts(issued.expires_at),
        principal=serial.principal(issued.principal),
    )


class SignInServicer(ServicerBase):
    async def SignUp(self, request: pb.SignUpRequest, context: Any) -> pb.SignInResult:
        async with self.uow() as session:
            outcome = await service.sign_up(
                session,
                self.ctx,
                email=request.email,
                password=request.password,
                name=request.name,
                client=client_meta(request.client),
            )
        return sign_in_result(accepted(outcome))

    async def SignInWithPassword(
        self, request: pb.SignInWithPasswordRequest, context: Any
    ) -> pb.SignInResult:
        async with self.uow() as session:
            outcome = await service.sign_in_with_password(
                session,
                self.ctx,
                email=request.email,
                password=request.password,
                client=client_meta(request.client),
            )
        return sign_in_result(accepted(outcome))

    async def SignOut(self, request: Empty, context: Any) -> Empty:
        async with self.uow() as session:
            await service.sign_out(session, self.ctx, current_principal())
        return Empty()

    async def Authenticate(self, request: pb.AuthenticateRequest, context: Any) -> pb.Principal:
        async with self.uow() as session:
            if request.kind == pb.AuthenticateRequest.API_KEY:
                found = await authenticate_api_key(
                    session, self.ctx, request.credential, request.requested_organization_id
                )
            else:
                found = await service.authenticate_sign_in(
                    session, self.ctx, request.credential, request.requested_organization_id
                )
        return serial.principal(found)

    async def SetActiveOrganization(
        self, request: pb.SetActiveOrganizationRequest, context: Any
    ) -> pb.Principal:
        async with self.uow() as session:
            found = await service.set_active_organization(
                session, self.ctx, current_principal(), request.organization_id
            )
        return serial.principal(found)

    async def ListSignInProviders(self, request: Empty, context: Any) -> pb.ListSignInProvidersResponse:
        providers = [pb.SignInProvider(id="password", name="Email and password")]
        providers += [pb.SignInProvider(id=p.id, name=p.name) for p in self.ctx.oauth.values()]
        return pb.ListSignInProvidersResponse(
            providers=providers,
            signup_open=not self.ctx.allowed_signup_emails,
            email_verification_required=self.ctx.require_email_verification,
        )
