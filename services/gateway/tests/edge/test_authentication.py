"""Authenticating every request at the edge (auth.md §4.4, gateway.md §7)."""

from __future__ import annotations

import pytest
from proliferate.devkit.pytest_plugin import register_canary

from ..conftest import PASSWORD, Stack  # noqa: TID252 - the shared test helpers


class TestCredentials:
    async def test_sign_up_sets_an_http_only_lax_cookie_that_authenticates(self, stack: Stack) -> None:
        client = stack.client()
        response = await client.post(
            "/v1/auth/sign-up", json={"email": "c@example.com", "password": PASSWORD, "name": "C"}
        )
        assert response.status_code == 201
        cookie = response.headers["set-cookie"].lower()
        assert (
            "proliferate_signin=" in cookie
            and "httponly" in cookie
            and "samesite=lax" in cookie
            and "path=/" in cookie
        )
        register_canary(client.cookies["proliferate_signin"])
        me = await client.get("/v1/auth/me")
        assert me.status_code == 200
        assert (me.json()["user"]["email"], me.json()["role"], me.json()["credential_kind"]) == (
            "c@example.com",
            "owner",
            "sign_in",
        )

    async def test_the_same_token_works_as_a_bearer_and_the_header_wins_over_the_cookie(
        self, stack: Stack
    ) -> None:
        a, b = await stack.sign_up(), await stack.sign_up()
        bare = stack.client()
        assert (await bare.get("/v1/auth/me", headers=a.bearer())).json()["user"]["id"] == a.user_id
        # b's cookie jar with a's header: the header is who acts.
        assert (await b.client.get("/v1/auth/me", headers=a.bearer())).json()["user"]["id"] == a.user_id

    @pytest.mark.parametrize(
        "header", [None, "Basic abc", "Bearer", "Bearer not-a-token", "Bearer plf_nope_x"]
    )
    async def test_a_missing_or_invalid_credential_is_401(self, stack: Stack, header: str | None) -> None:
        response = await stack.client().get(
            "/v1/auth/me", headers={"authorization": header} if header else {}
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"

    async def test_an_api_key_authenticates_and_is_shown_once(self, stack: Stack) -> None:
        owner = await stack.sign_up()
        created = await owner.client.post("/v1/api-keys", json={"name": "ci"})
        assert created.status_code == 201
        key = register_canary(created.json()["key"])
        me = await stack.client().get("/v1/auth/me", headers=owner.bearer(key))
        assert (me.json()["credential_kind"], me.json()["organization"]["id"]) == ("api_key", owner.org_id)
        listed = await owner.client.get("/v1/api-keys")
        assert key not in listed.text and listed.json()["api_keys"][0]["start"] == key[:8]

    async def test_an_access_token_is_verified_locally_and_a_tampered_one_is_401(self, stack: Stack) -> None:
        owner = await stack.sign_up()
        issued = await owner.client.post("/v1/auth/access-token")
        assert issued.status_code == 201
        token = register_canary(issued.json()["token"])
        me = await stack.client().get("/v1/auth/me", headers=owner.bearer(token))
        assert (me.status_code, me.json()["credential_kind"]) == (200, "access_token")
        tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        assert (await stack.client().get("/v1/auth/me", headers=owner.bearer(tampered))).status_code == 401

    async def test_sign_out_clears_the_cookie_and_the_token_is_refused(self, stack: Stack) -> None:
        user = await stack.sign_up()
        response = await user.client.post("/v1/auth/sign-out")
        assert response.status_code == 204 and "max-age=0" in response.headers["set-cookie"].lower()
        assert (await stack.client().get("/v1/auth/me", headers=user.bearer())).status_code == 401

    async def test_x_org_id_of_an_org_the_user_is_not_in_is_404(self, stack: Stack) -> None:
        a, b = await stack.sign_up(), await stack.sign_up()
        response = await a.client.get("/v1/auth/me", headers={"x-org-id": b.org_id})
        assert response.status_code == 404 and response.json()["error"]["code"] == "organization_not_found"


class TestPasswordSignIn:
    async def test_wrong_password_and_unknown_email_get_the_same_401_body(self, stack: Stack) -> None:
        user = await stack.sign_up()
        client = stack.client()
        wrong = await client.post(
            "/v1/auth/sign-in", json={"email": user.email, "password": "wrong password"}
        )
        unknown = await client.post(
            "/v1/auth/sign-in", json={"email": "no@example.com", "password": "wrong password"}
        )
        assert wrong.status_code == unknown.status_code == 401
        strip = lambda r: {k: v for k, v in r.json()["error"].items() if k != "request_id"}  # noqa: E731
        assert strip(wrong) == strip(unknown) and strip(wrong)["code"] == "invalid_credentials"

    async def test_twenty_failures_are_429_with_retry_after_after_the_threshold(self, stack: Stack) -> None:
        user = await stack.sign_up()
        client = stack.client()
        statuses = []
        for _ in range(20):
            response = await client.post(
                "/v1/auth/sign-in", json={"email": user.email, "password": "nope nope"}
            )
            statuses.append(response.status_code)
        assert statuses == [401] * 10 + [429] * 10
        assert 0 < int(response.headers["retry-after"]) <= 900
        assert response.json()["error"]["code"] == "too_many_requests"


async def test_organization_listing_and_domain_suggestions_are_routed_before_org_ids(stack: Stack) -> None:
    user = await stack.sign_up("lead@acme.io")
    team = await stack.create_org(user, "Acme")
    listed = (await user.client.get("/v1/orgs")).json()["organizations"]
    assert [(o["id"], o["role"]) for o in listed] == [(user.org_id, "owner"), (team, "owner")]
    suggestions = await user.client.get("/v1/orgs/domain-suggestions")
    assert (suggestions.status_code, suggestions.json()) == (200, {"domains": ["acme.io"]})
