"""OAuth sign-in providers behind one protocol (auth.md §8): GitHub through authlib's async
client (which runs on httpx2, so tests fake github.com at its transport rather than with respx).

Provider access tokens are used once, to read the identity, and never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import httpx2
from authlib.integrations.base_client.errors import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.httpx_client import AsyncOAuth2Client  # type: ignore[import-untyped]

PROVIDER_TIMEOUT_S = 10.0


class ProviderError(Exception):
    """The provider refused, failed or could not be reached; the sign-in fails with `oauth_failed`."""


@dataclass(frozen=True)
class OAuthIdentity:
    provider_account_id: str
    login: str | None
    name: str
    email: str | None  # the primary, verified email; None when the provider has none
    image_url: str | None


class OAuthProvider(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    def authorize_url(self, *, state: str, code_verifier: str, redirect_uri: str) -> str: ...

    async def exchange(self, *, code: str, code_verifier: str, redirect_uri: str) -> str: ...

    async def fetch_identity(self, access_token: str) -> OAuthIdentity: ...


class GitHubProvider:
    """GitHub through authlib's async client (httpx2). `transport` is the seam tests replace
    with a faithful fake of github.com and api.github.com."""

    id = "github"
    name = "GitHub"
    scope = "read:user user:email"

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        oauth_url: str = "https://github.com",
        api_url: str = "https://api.github.com",
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.oauth_url = oauth_url.rstrip("/")
        self.api_url = api_url.rstrip("/")
        self.transport = transport

    def _client(
        self, redirect_uri: str | None = None, token: dict[str, str] | None = None
    ) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            self.client_id,
            self.client_secret,
            scope=self.scope,
            redirect_uri=redirect_uri,
            token=token,
            code_challenge_method="S256",
            timeout=PROVIDER_TIMEOUT_S,
            transport=self.transport,
        )

    def authorize_url(self, *, state: str, code_verifier: str, redirect_uri: str) -> str:
        url, _ = self._client(redirect_uri).create_authorization_url(
            f"{self.oauth_url}/login/oauth/authorize", state=state, code_verifier=code_verifier
        )
        return str(url)

    async def exchange(self, *, code: str, code_verifier: str, redirect_uri: str) -> str:
        try:
            async with self._client(redirect_uri) as client:
                token = await client.fetch_token(
                    f"{self.oauth_url}/login/oauth/access_token",
                    code=code,
                    code_verifier=code_verifier,
                    headers={"Accept": "application/json"},
                )
        except (OAuthError, httpx2.HTTPError, ValueError) as exc:
            raise ProviderError(f"token exchange failed: {type(exc).__name__}") from None
        access_token = token.get("access_token") if isinstance(token, dict) else None
        if not access_token:
            raise ProviderError("token exchange returned no access token")
        return str(access_token)

    async def fetch_identity(self, access_token: str) -> OAuthIdentity:
        try:
            async with self._client(token={"access_token": access_token, "token_type": "bearer"}) as client:
                user = await self._get(client, f"{self.api_url}/user")
                emails = await self._get(client, f"{self.api_url}/user/emails")
        except (OAuthError, httpx2.HTTPError, ValueError) as exc:
            raise ProviderError(f"identity fetch failed: {type(exc).__name__}") from None
        if not isinstance(user, dict) or "id" not in user:
            raise ProviderError("GitHub returned no user id")
        candidates = [e for e in emails if isinstance(e, dict)] if isinstance(emails, list) else []
        primary = next(
            (e["email"] for e in candidates if e.get("primary") and e.get("verified") and e.get("email")),
            None,
        )
        login = user.get("login")
        return OAuthIdentity(
            provider_account_id=str(user["id"]),
            login=str(login) if login else None,
            name=str(user.get("name") or login or "GitHub user"),
            email=str(primary) if primary else None,
            image_url=_https_or_none(user.get("avatar_url")),
        )

    @staticmethod
    async def _get(client: AsyncOAuth2Client, url: str) -> Any:
        response = await client.get(url, headers={"Accept": "application/vnd.github+json"})
        if response.status_code != 200:
            raise ProviderError(f"GitHub answered {response.status_code} for {url}")
        return response.json()


def _https_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value.startswith("https://") and len(value) <= 2048 else None
