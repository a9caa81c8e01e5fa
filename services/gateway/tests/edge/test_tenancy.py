"""B2: for every organization-scoped route the gateway serves, a user of another organization
gets 404 — never 403, never 200. The cases are a table keyed by operation id; the routes are
read from the running app, so a new org-scoped route without a case here fails the suite."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from proliferate.gateway.edge.routes import ORG_SCOPED, Tenancy

from ..conftest import Stack, User  # noqa: TID252 - the shared test helpers


@dataclass
class World:
    """Organization A with a member, an invitation and an API key; B is a user of another org."""

    a: User
    a_org: str
    a_member_id: str
    a_invitation_id: str
    a_key_id: str
    a_key: str
    b: User


Call = tuple[str, str, dict[str, Any] | None, dict[str, str]]
IN_A = "x-org-id"


def _in(world: World) -> dict[str, str]:
    return {IN_A: world.a_org}  # B asks to act in A's organization


CROSS_ORG_CASES: dict[str, Callable[[World], Call]] = {
    "set_active_organization": lambda w: (
        "PUT",
        "/v1/auth/active-organization",
        {"organization_id": w.a_org},
        {},
    ),
    "get_organization": lambda w: ("GET", f"/v1/orgs/{w.a_org}", None, {}),
    "update_organization": lambda w: ("PATCH", f"/v1/orgs/{w.a_org}", {"name": "Taken over"}, {}),
    "set_allowed_domains": lambda w: (
        "PUT",
        f"/v1/orgs/{w.a_org}/allowed-domains",
        {"domains": ["evil.io"]},
        {},
    ),
    "list_members": lambda w: ("GET", f"/v1/orgs/{w.a_org}/members", None, {}),
    "update_member_role": lambda w: (
        "PATCH",
        f"/v1/orgs/{w.a_org}/members/{w.a_member_id}",
        {"role": "owner"},
        {},
    ),
    "remove_member": lambda w: ("DELETE", f"/v1/orgs/{w.a_org}/members/{w.a_member_id}", None, {}),
    "leave_organization": lambda w: ("POST", f"/v1/orgs/{w.a_org}/leave", None, {}),
    "list_invitations": lambda w: ("GET", f"/v1/orgs/{w.a_org}/invitations", None, {}),
    "create_invitation": lambda w: (
        "POST",
        f"/v1/orgs/{w.a_org}/invitations",
        {"email": "x@example.com"},
        {},
    ),
    "cancel_invitation": lambda w: (
        "DELETE",
        f"/v1/orgs/{w.a_org}/invitations/{w.a_invitation_id}",
        None,
        {},
    ),
    "get_onboarding_status": lambda w: ("GET", "/v1/onboarding/status", None, _in(w)),
    "save_onboarding_answers": lambda w: ("PUT", "/v1/onboarding/answers", {"team_size": "1"}, _in(w)),
    "start_trial": lambda w: ("POST", "/v1/onboarding/start-trial", {"plan": "dev"}, _in(w)),
    "complete_onboarding": lambda w: ("POST", "/v1/onboarding/complete", None, _in(w)),
    "list_api_keys": lambda w: ("GET", "/v1/api-keys", None, _in(w)),
    "create_api_key": lambda w: ("POST", "/v1/api-keys", {"name": "mine now"}, _in(w)),
    "revoke_api_key": lambda w: ("DELETE", f"/v1/api-keys/{w.a_key_id}", None, {}),
}

# Routes with nothing of another organization to reach, and why.
NOT_ORG_SCOPED: dict[str, str] = {
    "list_sign_in_providers": "public, the same for everyone",
    "sign_up": "public: creates the caller's own user and personal org",
    "sign_in": "public: the caller's own credentials",
    "begin_oauth": "public",
    "complete_oauth": "public: the caller's own provider identity",
    "verify_email": "public: a link token, not an org id",
    "resend_verification": "public, answers the same for any email",
    "request_password_reset": "public, answers the same for any email",
    "reset_password": "public: a link token",
    "sign_out": "the caller's own sign-in",
    "get_me": "the caller's own user and acting org",
    "issue_access_token": "the caller's own principal",
    "list_organizations": "only organizations the caller is a member of",
    "create_organization": "a new organization of the caller",
    "get_domain_suggestions": "from the caller's own email",
    "get_invitation_preview": "public: a link token (the secret), not an org id",
    "accept_invitation": "a link token; the invitee's email must match",
    "reject_invitation": "a link token; the invitee's email must match",
    "get_admin_status": "the caller's own status",
    "admin_list_users": "super-admin only: all users by design (403 for others)",
    "admin_list_organizations": "super-admin only: all organizations by design (403 for others)",
    "start_impersonation": "super-admin only (403 for others)",
    "switch_impersonated_organization": "super-admin only (403 for others)",
    "stop_impersonation": "super-admin only (403 for others)",
}


def v1_routes(stack: Stack) -> dict[str, tuple[str, str, str | None]]:
    """operation id → (method, path, tenancy) of every `/v1` route of the running gateway."""
    assert stack.gateways[0].parts.http is not None
    found = {}
    for route in stack.gateways[0].parts.http.app.routes:
        for handler in getattr(route, "route_handlers", []):
            methods = sorted(set(handler.http_methods) - {"OPTIONS", "HEAD"})
            if route.path.startswith("/v1/") and methods:
                found[handler.operation_id] = (methods[0], route.path, handler.opt.get("tenancy"))
    return found


async def world(stack: Stack) -> World:
    a, b = await stack.sign_up(), await stack.sign_up()
    a_org = await stack.create_org(a, "Org A")
    in_a = {IN_A: a_org}
    member = await stack.sign_up()
    created = await a.client.post(f"/v1/orgs/{a_org}/invitations", json={"email": member.email}, headers=in_a)
    accepted = await member.client.post(f"/v1/invitations/{created.json()['token']}/accept")
    pending = await a.client.post(
        f"/v1/orgs/{a_org}/invitations", json={"email": "later@example.com"}, headers=in_a
    )
    key = await a.client.post("/v1/api-keys", json={"name": "a's key"}, headers=in_a)
    assert accepted.status_code == 200 and pending.status_code == 201 and key.status_code == 201
    return World(
        a,
        a_org,
        accepted.json()["id"],
        pending.json()["invitation"]["id"],
        key.json()["api_key"]["id"],
        key.json()["key"],
        b,
    )


async def test_every_org_scoped_route_answers_404_to_a_user_of_another_org(start_stack: Any) -> None:
    stack = await start_stack(auth_settings={"MAILER": "disabled"})
    routes = v1_routes(stack)
    unclassified = sorted(
        op for op, (_, _, tenancy) in routes.items() if tenancy not in {t.value for t in Tenancy}
    )
    assert not unclassified, f"routes without a tenancy: {unclassified}"
    scoped = {op for op, (_, _, tenancy) in routes.items() if tenancy in ORG_SCOPED}
    missing = sorted(scoped - CROSS_ORG_CASES.keys())
    assert not missing, f"org-scoped routes without a cross-org case in CROSS_ORG_CASES: {missing}"
    unexplained = sorted(set(routes) - scoped - NOT_ORG_SCOPED.keys())
    assert not unexplained, f"routes neither org-scoped nor listed in NOT_ORG_SCOPED: {unexplained}"
    assert not (CROSS_ORG_CASES.keys() - routes.keys()), "a case names a route that no longer exists"

    w = await world(stack)
    answers = {}
    for op in sorted(scoped):
        method, path, body, headers = CROSS_ORG_CASES[op](w)
        assert method == routes[op][0], f"{op}: the case uses {method}, the route is {routes[op][0]}"
        response = await w.b.client.request(method, path, json=body, headers=headers)
        answers[op] = (response.status_code, response.json()["error"]["code"] if response.content else "")
    wrong = {op: answer for op, answer in answers.items() if answer[0] != 404}
    assert not wrong, f"routes that did not answer 404 to another org's user: {wrong}"

    # Nothing of A changed.
    a = w.a.client
    assert (await a.get(f"/v1/orgs/{w.a_org}", headers={IN_A: w.a_org})).json()["name"] == "Org A"
    assert len((await a.get(f"/v1/orgs/{w.a_org}/members", headers={IN_A: w.a_org})).json()["members"]) == 2
    invitations = (await a.get(f"/v1/orgs/{w.a_org}/invitations", headers={IN_A: w.a_org})).json()[
        "invitations"
    ]
    assert {i["id"]: i["status"] for i in invitations}[w.a_invitation_id] == "pending"
    assert (await stack.client().get("/v1/auth/me", headers=w.a.bearer(w.a_key))).status_code == 200
