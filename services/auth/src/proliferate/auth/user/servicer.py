from __future__ import annotations

from typing import Any

from google.protobuf.empty_pb2 import Empty
from proliferate.auth import serial
from proliferate.auth.rpc import ServicerBase, client_meta
from proliferate.auth.sign_in import service as sign_in_service
from proliferate.auth.sign_in.servicer import sign_in_result
from proliferate.auth.user import service
from proliferate.kit.principal import PrincipalKind
from proliferate.kit.rpc import current_principal
from proliferate.protos.auth.v1 import auth_pb2 as pb


class UserServicer(ServicerBase):
    async def GetMe(self, request: Empty, context: Any) -> pb.Me:
        principal = current_principal()
        async with self.uow() as session:
            user, org = await service.get_me(session, principal)
        me = pb.Me(
            user=serial.user(user),
            role=principal.role,
            is_super_admin=principal.is_super_admin,
            impersonator_user_id=principal.impersonator_user_id,
            credential_kind="api_key" if principal.kind is PrincipalKind.API_KEY else "sign_in",
        )
        if org is not None:
            me.organization.CopyFrom(serial.organization(org, principal.role))
        return me

    async def BatchGetUsers(self, request: pb.BatchGetUsersRequest, context: Any) -> pb.BatchGetUsersResponse:
        async with self.uow() as session:
            found = await service.batch_get(session, list(request.user_ids))
        return pb.BatchGetUsersResponse(users=serial.users(found))

    async def VerifyEmail(self, request: pb.VerifyEmailRequest, context: Any) -> pb.SignInResult:
        async with self.uow() as session:
            issued = await sign_in_service.sign_in_with_verification_link(
                session, self.ctx, request.token, client_meta(request.client)
            )
        return sign_in_result(issued)

    async def ResendVerification(self, request: pb.ResendVerificationRequest, context: Any) -> Empty:
        async with self.uow() as session:
            await service.resend_verification(session, self.ctx.clock, request.email)
        return Empty()

    async def RequestPasswordReset(self, request: pb.RequestPasswordResetRequest, context: Any) -> Empty:
        async with self.uow() as session:
            await service.request_password_reset(session, self.ctx.clock, request.email)
        return Empty()

    async def ResetPassword(self, request: pb.ResetPasswordRequest, context: Any) -> Empty:
        async with self.uow() as session:
            await service.reset_password(
                session, self.ctx.clock, self.ctx.passwords, request.token, request.password
            )
        return Empty()
