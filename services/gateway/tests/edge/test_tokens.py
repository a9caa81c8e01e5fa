"""Tokens verified locally with auth's JWKS (auth.md §4.4; §10 lines 31-32)."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from proliferate.auth.oauth.providers import GitHubProvider
from proliferate.devkit.pytest_plugin import TEST_SERVICE_AUTH_SECRET, register_canary
from proliferate.gateway.edge.authentication.tokens import TokenVerifier
from proliferate.kit.errors import PermissionDenied, Unauthenticated
from proliferate.kit.principal import PrincipalKind
from proliferate.kit.rpc import ServiceClient, ServiceCredentials
from proliferate.protos.auth.v1 import auth_pb2 as pb
from proliferate.protos.auth.v1 import auth_pb2_grpc

from ..conftest import APP_URL, Stack, StartStack  # noqa: TID252 - the shared test helpers


async def issue_sandbox_token(stack: Stack, session_id: str, org_id: str, ttl: int = 3600) -> pb.Token:
    client = ServiceClient(
        "gateway", "auth", f"127.0.0.1:{stack.auth.grpc_port}", ServiceCredentials(TEST_SERVICE_AUTH_SECRET)
    )
    try:
        stub = auth_pb2_grpc.AuthServiceStub(client.channel)
        token = await client.call(
            stub.IssueSandboxToken,
            pb.IssueSandboxTokenRequest(session_id=session_id, organization_id=org_id, ttl_seconds=ttl),
        )
        register_canary(token.token)
        return token
    finally:
        await client.close()


class TestSandboxToken:
    async def test_refused_for_another_session_after_exp_and_after_a_new_boot(self, stack: Stack) -> None:
        session_s, session_t, org = (str(uuid.uuid4()) for _ in range(3))
        first = await issue_sandbox_token(stack, session_s, org)
        stored = {session_s: first.jti}

        async def current_jti(session_id: str) -> str | None:
            return stored.get(session_id)

        verifier = stack.edge().tokens
        principal = await verifier.sandbox_principal(first.token, session_s, current_jti)
        assert (principal.kind, principal.session_id, principal.organization_id) == (
            PrincipalKind.SANDBOX,
            session_s,
            org,
        )
        with pytest.raises(PermissionDenied):
            await verifier.sandbox_principal(first.token, session_t, current_jti)
        later = TokenVerifier(verifier.jwks, clock=lambda: time.time() + 3601)
        with pytest.raises(Unauthenticated):
            await later.sandbox_principal(first.token, session_s, current_jti)
        second = await issue_sandbox_token(stack, session_s, org)
        stored[session_s] = second.jti  # the next boot supersedes the first token
        with pytest.raises(Unauthenticated):
            await verifier.sandbox_principal(first.token, session_s, current_jti)
        assert (
            await verifier.sandbox_principal(second.token, session_s, current_jti)
        ).credential_id == second.jti

    async def test_a_sandbox_token_is_not_a_product_api_credential(self, stack: Stack) -> None:
        token = await issue_sandbox_token(stack, str(uuid.uuid4()), str(uuid.uuid4()))
        response = await stack.client().get("/v1/auth/me", headers={"authorization": f"Bearer {token.token}"})
        assert response.status_code == 401


class TestAccessToken:
    async def test_an_expired_access_token_is_refused(self, stack: Stack) -> None:
        user = await stack.sign_up()
        token = register_canary((await user.client.post("/v1/auth/access-token")).json()["token"])
        later = TokenVerifier(stack.edge().tokens.jwks, clock=lambda: time.time() + 3601)
        with pytest.raises(Unauthenticated):
            await later.access_principal(token, "")
        assert (await stack.edge().tokens.access_principal(token, "")).user_id == user.user_id

    async def test_an_access_token_acts_only_in_its_org(self, stack: Stack) -> None:
        user = await stack.sign_up()
        other = await stack.create_org(user)
        token = register_canary(
            (await user.client.post("/v1/auth/access-token", headers={"x-org-id": user.org_id})).json()[
                "token"
            ]
        )
        response = await stack.client().get("/v1/auth/me", headers={**user.bearer(token), "x-org-id": other})
        assert response.status_code == 403


class FakeGitHub:
    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        url = str(request.url)
        if url == "https://github.com/login/oauth/access_token":
            if parse_qs(request.content.decode()).get("code") != ["good"]:
                return httpx2.Response(200, json={"error": "bad_verification_code"})
            return httpx2.Response(200, json={"access_token": "gho_x", "token_type": "bearer"})
        if url == "https://api.github.com/user":
            return httpx2.Response(200, json={"id": 7, "login": "octo", "name": "Octo"})
        if url == "https://api.github.com/user/emails":
            return httpx2.Response(
                200, json=[{"email": "octo@example.com", "primary": True, "verified": True}]
            )
        return httpx2.Response(404)


class TestGitHubSignInThroughTheEdge:
    async def test_start_redirects_to_github_and_the_callback_signs_in_and_redirects_to_the_app(
        self, start_stack: StartStack
    ) -> None:
        provider = GitHubProvider("cid", "github-secret-value", transport=httpx2.MockTransport(FakeGitHub()))
        stack = await start_stack(auth_overrides={"oauth": {"github": provider}})
        client = stack.client(follow_redirects=False)
        start = await client.get("/v1/auth/oauth/github/start", params={"redirect": "/sessions"})
        assert start.status_code == 302 and start.headers["location"].startswith(
            "https://github.com/login/oauth/authorize?"
        )
        state = parse_qs(urlsplit(start.headers["location"]).query)["state"][0]
        done = await client.get("/v1/auth/oauth/github/callback", params={"code": "good", "state": state})
        assert (done.status_code, done.headers["location"]) == (302, f"{APP_URL}/sessions")
        register_canary(client.cookies["proliferate_signin"])
        me = await client.get("/v1/auth/me")
        assert me.json()["user"]["email"] == "octo@example.com"
        again = await client.get("/v1/auth/oauth/github/callback", params={"code": "good", "state": state})
        assert (again.status_code, again.headers["location"]) == (
            302,
            f"{APP_URL}/sign-in?error=oauth_failed",
        )

    async def test_an_open_redirect_is_422(self, start_stack: StartStack) -> None:
        provider = GitHubProvider("cid", "github-secret-value", transport=httpx2.MockTransport(FakeGitHub()))
        stack = await start_stack(auth_overrides={"oauth": {"github": provider}})
        response = await stack.client().get(
            "/v1/auth/oauth/github/start", params={"redirect": "https://evil.example"}
        )
        assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_argument")


async def test_unknown_providers_and_missing_callback_fields_go_back_to_sign_in(stack: Stack) -> None:
    client = stack.client(follow_redirects=False)
    assert (await client.get("/v1/auth/oauth/nope/start")).status_code == 404
    response = await client.get("/v1/auth/oauth/github/callback")
    assert (response.status_code, response.headers["location"]) == (
        302,
        f"{APP_URL}/sign-in?error=oauth_failed",
    )
