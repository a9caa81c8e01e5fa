"""`/v1/auth/*`: sign-up, sign-in (password, GitHub), verification, password reset, sign-out,
the current user, access tokens and the active organization."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import Redirect
from proliferate.gateway.edge.auth import schemas as s
from proliferate.gateway.edge.auth import serial
from proliferate.gateway.edge.auth.cookies import cleared_cookie, sign_in_cookie
from proliferate.gateway.edge.authentication.credentials import CredentialKind, credential_of
from proliferate.gateway.edge.authentication.dependencies import Auth, Caller, client_info, edge_of
from proliferate.gateway.edge.routes import Tenancy, documented
from proliferate.kit.errors import RemoteError
from proliferate.kit.principal import PrincipalKind
from proliferate.protos.auth.v1 import auth_pb2 as pb


def _signed_in(
    request: Request[Any, Any, Any], result: pb.SignInResult, status: int = 200
) -> Response[s.SignInOut]:
    cookie = sign_in_cookie(result.token, serial.when(result, "expires_at"), edge_of(request).cookie_secure)
    return Response(serial.sign_in(result), status_code=status, cookies=[cookie])


@get("/v1/auth/providers", operation_id="list_sign_in_providers", **documented(Tenancy.PUBLIC))
async def list_sign_in_providers(auth: Auth) -> s.SignInProvidersOut:
    reply = await auth("ListSignInProviders")
    return s.SignInProvidersOut(
        providers=[s.SignInProviderOut(id=p.id, name=p.name) for p in reply.providers],
        signup_open=reply.signup_open,
        email_verification_required=reply.email_verification_required,
    )


@post("/v1/auth/sign-up", operation_id="sign_up", status_code=201, **documented(Tenancy.PUBLIC))
async def sign_up(
    request: Request[Any, Any, Any], data: JSONBody[s.SignUpBody], auth: Auth
) -> Response[s.SignInOut]:
    result = await auth(
        "SignUp",
        pb.SignUpRequest(
            email=data.email, password=data.password, name=data.name, client=client_info(request)
        ),
    )
    return _signed_in(request, result, 201)


@post("/v1/auth/sign-in", operation_id="sign_in", status_code=200, **documented(Tenancy.PUBLIC))
async def sign_in(
    request: Request[Any, Any, Any], data: JSONBody[s.SignInBody], auth: Auth
) -> Response[s.SignInOut]:
    result = await auth(
        "SignInWithPassword",
        pb.SignInWithPasswordRequest(email=data.email, password=data.password, client=client_info(request)),
    )
    return _signed_in(request, result)


@get(
    "/v1/auth/oauth/{provider:str}/start",
    operation_id="begin_oauth",
    status_code=302,
    **documented(Tenancy.PUBLIC),
)
async def begin_oauth(provider: FromPath[str], auth: Auth, redirect: FromQuery[str] = "/") -> Redirect:
    reply = await auth("BeginOAuth", pb.BeginOAuthRequest(provider=provider, redirect_after=redirect[:2048]))
    return Redirect(reply.authorize_url, status_code=302)


@get(
    "/v1/auth/oauth/{provider:str}/callback",
    operation_id="complete_oauth",
    status_code=302,
    **documented(Tenancy.PUBLIC),
)
async def complete_oauth(
    request: Request[Any, Any, Any],
    provider: FromPath[str],
    auth: Auth,
    code: FromQuery[str] = "",
    oauth_state: Annotated[str, QueryParameter(name="state")] = "",
) -> Redirect:
    edge = edge_of(request)
    try:
        result = await auth(
            "CompleteOAuth",
            pb.CompleteOAuthRequest(
                provider=provider, code=code[:2048], state=oauth_state[:512], client=client_info(request)
            ),
        )
    except RemoteError as exc:
        # The browser is mid-flow: it goes back to the sign-in page with a reason, never a JSON error.
        reason = "oauth_failed" if exc.code in ("oauth_failed", "provider_not_found") else exc.code
        return Redirect(f"{edge.app_url}/sign-in?{urlencode({'error': reason})}", status_code=302)
    target = result.redirect_after or "/"
    location = f"{edge.app_url}{target}" if target.startswith("/") else target
    cookie = sign_in_cookie(result.token, serial.when(result, "expires_at"), edge.cookie_secure)
    return Redirect(location, status_code=302, cookies=[cookie])


@post("/v1/auth/verify-email", operation_id="verify_email", status_code=200, **documented(Tenancy.PUBLIC))
async def verify_email(
    request: Request[Any, Any, Any], data: JSONBody[s.TokenBody], auth: Auth
) -> Response[s.SignInOut]:
    result = await auth("VerifyEmail", pb.VerifyEmailRequest(token=data.token, client=client_info(request)))
    return _signed_in(request, result)


@post(
    "/v1/auth/verify-email/resend",
    operation_id="resend_verification",
    status_code=202,
    **documented(Tenancy.PUBLIC),
)
async def resend_verification(data: JSONBody[s.EmailBody], auth: Auth) -> None:
    await auth("ResendVerification", pb.ResendVerificationRequest(email=data.email))


@post(
    "/v1/auth/password-reset",
    operation_id="request_password_reset",
    status_code=202,
    **documented(Tenancy.PUBLIC),
)
async def request_password_reset(
    request: Request[Any, Any, Any], data: JSONBody[s.EmailBody], auth: Auth
) -> None:
    await auth(
        "RequestPasswordReset", pb.RequestPasswordResetRequest(email=data.email, client=client_info(request))
    )


@post(
    "/v1/auth/password-reset/confirm",
    operation_id="reset_password",
    status_code=204,
    **documented(Tenancy.PUBLIC),
)
async def reset_password(data: JSONBody[s.ResetPasswordBody], auth: Auth) -> None:
    await auth("ResetPassword", pb.ResetPasswordRequest(token=data.token, password=data.password))


@post("/v1/auth/sign-out", operation_id="sign_out", status_code=204, **documented(Tenancy.USER))
async def sign_out(request: Request[Any, Any, Any], principal: Caller, auth: Auth) -> Response[None]:
    await auth("SignOut", principal=principal)
    edge = edge_of(request)
    edge.cache.drop_credential(principal.credential_id)  # here at once; other replicas on the event
    return Response(None, status_code=204, cookies=[cleared_cookie(edge.cookie_secure)])


@get("/v1/auth/me", operation_id="get_me", **documented(Tenancy.USER))
async def get_me(request: Request[Any, Any, Any], principal: Caller, auth: Auth) -> s.MeOut:
    me = await auth("GetMe", principal=principal)
    credential = credential_of(request)
    kind = "api_key" if principal.kind is PrincipalKind.API_KEY else "sign_in"
    if credential is not None and credential.kind is CredentialKind.ACCESS_TOKEN:
        kind = "access_token"
    return serial.me(me, kind)


@post("/v1/auth/access-token", operation_id="issue_access_token", status_code=201, **documented(Tenancy.USER))
async def issue_access_token(principal: Caller, auth: Auth) -> s.AccessTokenOut:
    token = await auth("IssueAccessToken", principal=principal)
    return s.AccessTokenOut(token=token.token, expires_at=serial.when(token, "expires_at"))


@put("/v1/auth/active-organization", operation_id="set_active_organization", **documented(Tenancy.ORG_BODY))
async def set_active_organization(
    request: Request[Any, Any, Any], data: JSONBody[s.ActiveOrganizationBody], principal: Caller, auth: Auth
) -> s.SignInOut:
    reply = await auth(
        "SetActiveOrganization",
        pb.SetActiveOrganizationRequest(organization_id=data.organization_id),
        principal=principal,
    )
    edge_of(request).cache.drop_credential(principal.credential_id)  # here at once; elsewhere on the event
    return s.SignInOut(
        user_id=reply.user_id,
        organization_id=serial.opt(reply.organization_id),
        role=serial.opt(reply.role),
        expires_at=None,
    )


ROUTES = [
    list_sign_in_providers,
    sign_up,
    sign_in,
    begin_oauth,
    complete_oauth,
    verify_email,
    resend_verification,
    request_password_reset,
    reset_password,
    sign_out,
    get_me,
    issue_access_token,
    set_active_organization,
]
