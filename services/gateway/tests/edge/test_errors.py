"""The typed error body and the status of each refusal at the edge: bad input (B9), the last
owner (B7), invitations, billing not there yet (gateway.md §4.6, §7)."""

from __future__ import annotations

from typing import Any

import pytest

from ..conftest import PASSWORD, Stack  # noqa: TID252 - the shared test helpers


class TestBadInput:
    async def test_a_body_over_the_limit_is_413(self, stack: Stack) -> None:
        response = await stack.client().post(
            "/v1/auth/sign-in",
            content=b'{"email": "' + b"a" * (1024 * 1024 + 10) + b'"}',
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"

    async def test_malformed_json_is_400_invalid_json(self, stack: Stack) -> None:
        response = await stack.client().post(
            "/v1/auth/sign-in", content=b'{"email": ', headers={"content-type": "application/json"}
        )
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"email": "a@example.com", "password": 12345678, "name": "A"}, "password"),
            ({"email": "a@example.com", "password": "short", "name": "A"}, "password"),
            ({"email": "a@example.com", "password": PASSWORD, "name": ""}, "name"),
            ({"email": "a@example.com", "password": PASSWORD}, "name"),
            ({"email": "a@example.com", "password": PASSWORD, "name": "A", "admin": True}, "admin"),
        ],
    )
    async def test_a_wrong_field_is_422_naming_it(
        self, stack: Stack, body: dict[str, Any], field: str
    ) -> None:
        response = await stack.client().post("/v1/auth/sign-up", json=body)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "validation_failed"
        assert any(field in f["field"] or field in f["message"] for f in error["details"]["fields"]), error

    async def test_an_invalid_email_caught_by_auth_is_422_with_the_field(self, stack: Stack) -> None:
        response = await stack.client().post(
            "/v1/auth/sign-up", json={"email": "not-an-email", "password": PASSWORD, "name": "A"}
        )
        assert response.status_code == 422
        assert response.json()["error"]["details"]["fields"][0]["field"] == "email"

    async def test_every_error_has_the_typed_body_with_a_request_id(self, stack: Stack) -> None:
        response = await stack.client().get("/v1/auth/me", headers={"x-request-id": "req-123"})
        assert response.status_code == 401
        assert response.json() == {
            "error": {
                "code": "unauthenticated",
                "message": "sign in, or send `Authorization: Bearer <token>`",
                "details": {},
                "request_id": "req-123",
            }
        }


class TestConflicts:
    async def test_email_taken_is_409(self, stack: Stack) -> None:
        user = await stack.sign_up()
        response = await stack.client().post(
            "/v1/auth/sign-up", json={"email": user.email, "password": PASSWORD, "name": "x"}
        )
        assert (response.status_code, response.json()["error"]["code"]) == (409, "email_taken")

    async def test_the_last_owner_cannot_leave_be_demoted_or_be_removed(self, stack: Stack) -> None:
        owner = await stack.sign_up()
        org = await stack.create_org(owner)
        headers = {"x-org-id": org}
        members = (await owner.client.get(f"/v1/orgs/{org}/members", headers=headers)).json()["members"]
        me = members[0]["id"]
        answers = [
            await owner.client.post(f"/v1/orgs/{org}/leave", headers=headers),
            await owner.client.patch(f"/v1/orgs/{org}/members/{me}", json={"role": "admin"}, headers=headers),
            await owner.client.delete(f"/v1/orgs/{org}/members/{me}", headers=headers),
        ]
        assert [(r.status_code, r.json()["error"]["code"]) for r in answers] == [(409, "last_owner")] * 3

    async def test_an_expired_or_reused_invitation_is_409_with_a_clear_code(self, start_stack: Any) -> None:
        stack = await start_stack(auth_settings={"MAILER": "disabled"})
        owner, invitee = await stack.sign_up(), await stack.sign_up()
        created = await owner.client.post(
            f"/v1/orgs/{owner.org_id}/invitations", json={"email": invitee.email}
        )
        token = created.json()["token"]
        assert (await invitee.client.post(f"/v1/invitations/{token}/reject")).status_code == 200
        reused = await invitee.client.post(f"/v1/invitations/{token}/accept")
        assert (reused.status_code, reused.json()["error"]["code"]) == (409, "invitation_not_pending")
        assert reused.json()["error"]["details"]["status"] == "rejected"

    async def test_an_admin_changing_a_role_is_403_and_an_owner_promotes(self, start_stack: Any) -> None:
        stack = await start_stack(auth_settings={"MAILER": "disabled"})
        owner, admin = await stack.sign_up(), await stack.sign_up()
        org = await stack.create_org(owner)
        token = (
            await owner.client.post(
                f"/v1/orgs/{org}/invitations",
                json={"email": admin.email, "role": "admin"},
                headers={"x-org-id": org},
            )
        ).json()["token"]
        admin_member = (await admin.client.post(f"/v1/invitations/{token}/accept")).json()
        self_promotion = await admin.client.patch(
            f"/v1/orgs/{org}/members/{admin_member['id']}", json={"role": "owner"}
        )
        assert (self_promotion.status_code, self_promotion.json()["error"]["code"]) == (403, "forbidden")
        promote = await owner.client.patch(
            f"/v1/orgs/{org}/members/{admin_member['id']}", json={"role": "owner"}, headers={"x-org-id": org}
        )
        assert (promote.status_code, promote.json()["role"]) == (200, "owner")


class TestBilling:
    async def test_start_trial_says_billing_is_not_available_yet(self, stack: Stack) -> None:
        owner = await stack.sign_up()
        response = await owner.client.post("/v1/onboarding/start-trial", json={"plan": "pro"})
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "billing_unavailable"
        status = await owner.client.get("/v1/onboarding/status")
        assert (status.status_code, status.json()["status"], status.json()["degraded"]) == (
            200,
            "pending",
            True,
        )
