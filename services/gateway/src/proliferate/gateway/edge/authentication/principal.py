"""`proliferate.auth.v1.Principal` ↔ the kit's `Principal`."""

from __future__ import annotations

from proliferate.kit.principal import Principal, PrincipalKind
from proliferate.protos.auth.v1 import auth_pb2 as pb

_KINDS = {
    pb.Principal.USER: PrincipalKind.USER,
    pb.Principal.API_KEY: PrincipalKind.API_KEY,
    pb.Principal.SERVICE: PrincipalKind.SERVICE,
    pb.Principal.SANDBOX: PrincipalKind.SANDBOX,
}


def principal_of(message: pb.Principal) -> Principal:
    return Principal(
        kind=_KINDS[message.kind],
        user_id=message.user_id,
        organization_id=message.organization_id,
        role=message.role,
        credential_id=message.credential_id,
        impersonator_user_id=message.impersonator_user_id,
        email=message.email,
        is_super_admin=message.is_super_admin,
        service_name=message.service_name,
        session_id=message.session_id,
    )
