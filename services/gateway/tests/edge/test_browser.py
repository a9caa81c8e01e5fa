"""Browser rules at the edge: cookie requests from another origin cannot change anything
(CSRF), CORS answers only the allow-list (auth.md §7, gateway.md §7)."""

from __future__ import annotations

from typing import Any

import httpx

from ..conftest import APP_URL, Stack  # noqa: TID252 - the shared test helpers


async def test_a_cookie_request_from_another_origin_is_refused(stack: Stack) -> None:
    user = await stack.sign_up()
    evil = {"origin": "https://evil.example"}
    refused = await user.client.post("/v1/orgs", json={"name": "Evil"}, headers=evil)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "origin_not_allowed")
    assert (await user.client.post("/v1/orgs", json={"name": "Good"})).status_code == 201  # from APP_URL
    # A bearer token is not sent by browsers on their own: no CSRF, the origin does not matter.
    bearer = await stack.client().post("/v1/orgs", json={"name": "Script"}, headers={**evil, **user.bearer()})
    assert bearer.status_code == 201
    # Reads are allowed whatever the origin (CORS decides what the page may see).
    assert (await user.client.get("/v1/auth/me", headers=evil)).status_code == 200


async def test_cors_answers_only_the_app_origin(start_stack: Any) -> None:
    stack = await start_stack(gateway_settings={"CORS_ORIGINS": "https://admin.proliferate.test, *"})
    async with httpx.AsyncClient(base_url=stack.url()) as client:
        for origin, allowed in (
            (APP_URL, True),
            ("https://admin.proliferate.test", True),
            ("https://evil.example", False),
        ):
            response = await client.options(
                "/v1/auth/me", headers={"origin": origin, "access-control-request-method": "GET"}
            )
            assert (response.headers.get("access-control-allow-origin") == origin) is allowed, (
                origin,
                response.headers,
            )
            if allowed:
                assert response.headers.get("access-control-allow-credentials") == "true"
        plain = await client.get("/v1/auth/providers", headers={"origin": "https://evil.example"})
        assert plain.headers.get("access-control-allow-origin") not in ("*", "https://evil.example")
