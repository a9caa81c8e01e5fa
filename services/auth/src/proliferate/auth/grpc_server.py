"""gRPC entry point of the auth service: which servicers it serves, and to whom."""

from __future__ import annotations

from collections.abc import Callable

from proliferate.auth.admin.servicer import AdminServicer
from proliferate.auth.api_key.servicer import ApiKeyServicer
from proliferate.auth.context import AuthContext
from proliferate.auth.invitation.servicer import InvitationServicer
from proliferate.auth.member.servicer import MemberServicer
from proliferate.auth.oauth.servicer import OAuthServicer
from proliferate.auth.onboarding.servicer import OnboardingServicer
from proliferate.auth.organization.servicer import OrganizationServicer
from proliferate.auth.sign_in.servicer import SignInServicer
from proliferate.auth.token.servicer import TokenServicer
from proliferate.auth.user.servicer import UserServicer
from proliferate.kit.rpc import GrpcServer
from proliferate.kit.topology import SERVICES
from proliferate.protos.auth.v1 import auth_pb2, auth_pb2_grpc

SERVICE_NAME = auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name

# method -> calling services (auth.md §4.1, contracts.md §a); "*" covers the rest. Only the
# gateway forwards end-user principals, so only it reaches the methods that act for one.
ALLOWED_CALLERS: dict[str, frozenset[str]] = {
    "*": frozenset({"gateway"}),
    "Authenticate": frozenset({"gateway"}),
    "IssueSandboxToken": frozenset({"gateway"}),
    "BatchGetUsers": frozenset({"gateway"}),
    "GetJwks": frozenset(SERVICES),
    "GetMembership": frozenset({"gateway", "actions", "integrations"}),
}


class AuthServiceServicer(
    SignInServicer,
    OAuthServicer,
    UserServicer,
    TokenServicer,
    OrganizationServicer,
    MemberServicer,
    InvitationServicer,
    OnboardingServicer,
    ApiKeyServicer,
    AdminServicer,
    auth_pb2_grpc.AuthServiceServicer,
):
    """Every method of AuthService: each domain's servicer is a thin adapter over its service."""


def registrar(ctx: AuthContext) -> Callable[[GrpcServer], None]:
    def register(server: GrpcServer) -> None:
        server.register(
            SERVICE_NAME,
            auth_pb2_grpc.add_AuthServiceServicer_to_server,
            AuthServiceServicer(ctx),
            ALLOWED_CALLERS,
        )

    return register
