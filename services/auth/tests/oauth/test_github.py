"""GitHub OAuth sign-in through authlib, with github.com and api.github.com faked at the transport
(auth.md §5.3; §10 lines 8-11)."""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx2
import pytest
from proliferate.auth.oauth.providers import GitHubProvider
from proliferate.protos.auth.v1 import auth_pb2 as pb

from ..conftest import AuthApi, StartAuth, expect_error  # noqa: TID252 - the shared test helpers

GITHUB_ID = "4242"


def github_identity(
    email: str = "octo@example.com", verified: bool = True, primary: bool = True
) -> dict[str, Any]:
    return {
        "user": {
            "id": int(GITHUB_ID),
            "login": "octocat",
            "name": "Octo Cat",
            "avatar_url": "https://avatars.example/o.png",
        },
        "emails": [{"email": email, "primary": primary, "verified": verified}],
    }


class FakeGitHub:
    """github.com's OAuth endpoints and api.github.com's user endpoints, at the transport seam
    of authlib's client (httpx2): the test sets `identity` and reads `token_requests`."""

    def __init__(self) -> None:
        self.identity = github_identity()
        self.token_requests: list[dict[str, list[str]]] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        url = str(request.url)
        if request.method == "POST" and url == "https://github.com/login/oauth/access_token":
            form = parse_qs(request.content.decode())
            self.token_requests.append(form)
            if form.get("code") != ["good-code"]:
                return httpx2.Response(200, json={"error": "bad_verification_code"})
            return httpx2.Response(200, json={"access_token": "gho_test_access", "token_type": "bearer"})
        if request.headers.get("authorization") != "Bearer gho_test_access":
            return httpx2.Response(401, json={"message": "Bad credentials"})
        if url == "https://api.github.com/user":
            return httpx2.Response(200, json=self.identity["user"])
        if url == "https://api.github.com/user/emails":
            return httpx2.Response(200, json=self.identity["emails"])
        return httpx2.Response(404, json={"message": "Not Found"})


@pytest.fixture
def github() -> FakeGitHub:
    return FakeGitHub()


@pytest.fixture
async def oauth_auth(start_auth: StartAuth, github: FakeGitHub) -> AuthApi:
    provider = GitHubProvider("client-id-1", "github-client-secret-1", transport=httpx2.MockTransport(github))
    return await start_auth(overrides={"oauth": {"github": provider}})


async def begin(auth: AuthApi, redirect: str = "/sessions") -> tuple[str, dict[str, list[str]]]:
    reply = await auth.call("BeginOAuth", pb.BeginOAuthRequest(provider="github", redirect_after=redirect))
    query = parse_qs(urlsplit(reply.authorize_url).query)
    return query["state"][0], query


async def complete(auth: AuthApi, state: str, code: str = "good-code") -> pb.SignInResult:
    return await auth.call(
        "CompleteOAuth", pb.CompleteOAuthRequest(provider="github", code=code, state=state)
    )


class TestGitHubSignIn:
    async def test_a_new_github_id_with_an_unused_email_creates_a_verified_user_and_personal_org(
        self, oauth_auth: AuthApi, github: FakeGitHub
    ) -> None:
        state, query = await begin(oauth_auth)
        assert query["scope"] == ["read:user user:email"] and query["code_challenge_method"] == ["S256"]
        result = await complete(oauth_auth, state)
        assert result.redirect_after == "/sessions"
        principal = await oauth_auth.authenticate(result.token)
        assert principal.role == "owner"
        user = (await oauth_auth.rows("SELECT email, name, email_verified_at, image_url FROM users"))[0]
        assert (user.email, user.name, user.image_url) == (
            "octo@example.com",
            "Octo Cat",
            "https://avatars.example/o.png",
        )
        assert user.email_verified_at is not None
        assert await oauth_auth.scalar("SELECT count(*) FROM organizations WHERE is_personal") == 1
        assert (await oauth_auth.rows("SELECT provider, provider_account_id, provider_login FROM accounts"))[
            0
        ] == (
            "github",
            GITHUB_ID,
            "octocat",
        )
        # PKCE: the verifier sent with the code hashes to the challenge of the authorize URL.
        verifier = github.token_requests[0]["code_verifier"][0]
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        assert query["code_challenge"] == [digest]

    async def test_signing_in_again_reuses_the_account(self, oauth_auth: AuthApi, github: FakeGitHub) -> None:
        first = await complete(oauth_auth, (await begin(oauth_auth))[0])
        second = await complete(oauth_auth, (await begin(oauth_auth))[0])
        assert first.principal.user_id == second.principal.user_id
        assert await oauth_auth.scalar("SELECT count(*) FROM users") == 1

    async def test_a_verified_github_email_of_an_unverified_password_user_links_and_evicts_the_password(
        self, oauth_auth: AuthApi, github: FakeGitHub
    ) -> None:
        squatter = await oauth_auth.sign_up("octo@example.com")
        result = await complete(oauth_auth, (await begin(oauth_auth))[0])
        assert result.principal.user_id == squatter.user_id
        assert await oauth_auth.scalar("SELECT count(*) FROM accounts WHERE provider = 'password'") == 0
        assert await oauth_auth.scalar("SELECT email_verified_at IS NOT NULL FROM users")
        await expect_error(oauth_auth.authenticate(squatter.token), "unauthenticated")
        await expect_error(oauth_auth.sign_in("octo@example.com"), "invalid_credentials")
        subjects = await oauth_auth.outbox_subjects()
        assert "proliferate.auth.sign_in.revoked" in subjects and "proliferate.auth.user.verified" in subjects

    @pytest.mark.parametrize(
        "identity",
        [
            github_identity(verified=False),
            github_identity(primary=False),
            {"user": github_identity()["user"], "emails": []},
        ],
    )
    async def test_no_verified_primary_email_fails_and_creates_nobody(
        self, oauth_auth: AuthApi, github: FakeGitHub, identity: dict[str, Any]
    ) -> None:
        github.identity = identity
        state, _ = await begin(oauth_auth)
        await expect_error(complete(oauth_auth, state), "oauth_failed", grpc.StatusCode.FAILED_PRECONDITION)
        assert await oauth_auth.scalar("SELECT count(*) FROM users") == 0

    async def test_a_reused_state_fails(self, oauth_auth: AuthApi, github: FakeGitHub) -> None:
        state, _ = await begin(oauth_auth)
        await complete(oauth_auth, state)
        await expect_error(complete(oauth_auth, state), "oauth_failed")

    async def test_a_state_that_failed_once_cannot_be_retried(
        self, oauth_auth: AuthApi, github: FakeGitHub
    ) -> None:
        state, _ = await begin(oauth_auth)
        await expect_error(complete(oauth_auth, state, code="bad-code"), "oauth_failed")
        await expect_error(complete(oauth_auth, state), "oauth_failed")
        assert await oauth_auth.scalar("SELECT count(*) FROM users") == 0

    async def test_a_state_older_than_ten_minutes_fails(
        self, oauth_auth: AuthApi, github: FakeGitHub
    ) -> None:
        state, _ = await begin(oauth_auth)
        oauth_auth.clock.advance(timedelta(minutes=10, seconds=1))
        await expect_error(complete(oauth_auth, state), "oauth_failed")
        assert await oauth_auth.scalar("SELECT count(*) FROM users") == 0

    async def test_an_unknown_state_fails(self, oauth_auth: AuthApi, github: FakeGitHub) -> None:
        await expect_error(complete(oauth_auth, "made-up-state"), "oauth_failed")

    @pytest.mark.parametrize(
        "redirect", ["https://evil.example", "//evil.example/x", "javascript:alert(1)", "/\\evil"]
    )
    async def test_an_open_redirect_is_invalid_argument(self, oauth_auth: AuthApi, redirect: str) -> None:
        await expect_error(
            oauth_auth.call("BeginOAuth", pb.BeginOAuthRequest(provider="github", redirect_after=redirect)),
            "invalid_argument",
            grpc.StatusCode.INVALID_ARGUMENT,
        )

    async def test_a_redirect_on_the_app_origin_is_kept(
        self, oauth_auth: AuthApi, github: FakeGitHub
    ) -> None:
        state, _ = await begin(oauth_auth, "https://app.proliferate.test/onboarding")
        assert (await complete(oauth_auth, state)).redirect_after == "https://app.proliferate.test/onboarding"

    async def test_an_unconfigured_provider_is_not_found_and_listed_providers_say_so(
        self, auth: AuthApi
    ) -> None:
        await expect_error(
            auth.call("BeginOAuth", pb.BeginOAuthRequest(provider="github")),
            "provider_not_found",
            grpc.StatusCode.NOT_FOUND,
        )
        listed = await auth.call("ListSignInProviders")
        assert [p.id for p in listed.providers] == ["password"]

    async def test_listed_providers_include_github_when_configured(self, oauth_auth: AuthApi) -> None:
        listed = await oauth_auth.call("ListSignInProviders")
        assert [p.id for p in listed.providers] == ["password", "github"]
        assert listed.signup_open
