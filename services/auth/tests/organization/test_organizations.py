"""Organizations: team creation, active organization, reads for members only, owner-only
changes, and the tenancy rule (another org's resources are not found) — auth.md §5.5, §10.15."""

from __future__ import annotations

import grpc
import pytest
from proliferate.protos.auth.v1 import auth_pb2 as pb

from ..conftest import AuthApi, expect_error  # noqa: TID252 - the shared test helpers


class TestCreateOrganization:
    async def test_creates_the_org_and_owner_membership_and_makes_it_active(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        org_id = await auth.create_org(owner, "Acme Inc", slug="acme")
        principal = await auth.as_member(owner)
        assert (principal.organization_id, principal.role) == (org_id, "owner")
        orgs = await auth.call("ListMyOrganizations", principal=principal)
        assert [(o.slug, o.role, o.is_personal) for o in orgs.organizations][1] == ("acme", "owner", False)
        subjects = await auth.outbox_subjects()
        assert subjects.count("proliferate.auth.organization.created") == 2

    async def test_a_taken_slug_is_409_slug_taken(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        await auth.create_org(owner, "Acme", slug="acme")
        await expect_error(
            auth.create_org(owner, "Other", slug="acme"), "slug_taken", grpc.StatusCode.ALREADY_EXISTS
        )

    async def test_without_a_slug_one_is_derived_and_made_unique(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        first = await auth.call(
            "GetOrganization",
            pb.OrganizationRef(organization_id=await auth.create_org(owner, "Acme")),
            await auth.as_member(owner),
        )
        second = await auth.call(
            "GetOrganization",
            pb.OrganizationRef(organization_id=await auth.create_org(owner, "Acme")),
            await auth.as_member(owner),
        )
        assert first.slug == "acme" and second.slug.startswith("acme-") and first.slug != second.slug

    @pytest.mark.parametrize(("name", "slug"), [("", None), ("ok", "A_b"), ("ok", "ab"), ("ok", "-abc")])
    async def test_bad_names_and_slugs_are_invalid_argument(
        self, auth: AuthApi, name: str, slug: str | None
    ) -> None:
        owner = await auth.sign_up()
        await expect_error(auth.create_org(owner, name, slug=slug), "invalid_argument")

    async def test_at_most_twenty_a_day_per_user(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        for i in range(20):
            await auth.create_org(owner, f"Org {i}")
        await expect_error(auth.create_org(owner, "One more"), "too_many_requests")


class TestActiveOrganization:
    async def test_switching_needs_membership_and_another_org_is_not_found(self, auth: AuthApi) -> None:
        a, b = await auth.sign_up(), await auth.sign_up()
        team = await auth.create_org(a, "Team")
        principal = await auth.call(
            "SetActiveOrganization",
            pb.SetActiveOrganizationRequest(organization_id=a.org_id),
            await auth.as_member(a),
        )
        assert principal.organization_id == a.org_id
        assert (await auth.as_member(a)).organization_id == a.org_id
        # Gateways cache principals: every switch (and the new org made active) is published.
        assert (await auth.outbox_subjects()).count("proliferate.auth.sign_in.updated") == 2
        await expect_error(
            auth.call(
                "SetActiveOrganization",
                pb.SetActiveOrganizationRequest(organization_id=team),
                await auth.as_member(b),
            ),
            "organization_not_found",
            grpc.StatusCode.NOT_FOUND,
        )


class TestReadAndUpdate:
    async def test_owner_renames_and_the_event_names_the_changed_fields(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        org_id = await auth.create_org(owner, "Acme", slug="acme")
        updated = await auth.call(
            "UpdateOrganization",
            pb.UpdateOrganizationRequest(
                organization_id=org_id, name="Acme 2", logo_url="https://img.example/l.png"
            ),
            await auth.as_member(owner),
        )
        assert (updated.name, updated.slug, updated.logo_url) == (
            "Acme 2",
            "acme",
            "https://img.example/l.png",
        )
        assert "proliferate.auth.organization.updated" in await auth.outbox_subjects()

    async def test_a_non_https_logo_is_invalid(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        await expect_error(
            auth.call(
                "UpdateOrganization",
                pb.UpdateOrganizationRequest(
                    organization_id=owner.org_id, logo_url="http://img.example/l.png"
                ),
                await auth.as_member(owner),
            ),
            "invalid_argument",
        )

    async def test_allowed_domains_are_owner_only_and_validated(self, auth: AuthApi) -> None:
        owner = await auth.sign_up("boss@acme.io")
        org = await auth.call(
            "SetAllowedDomains",
            pb.SetAllowedDomainsRequest(
                organization_id=owner.org_id, domains=["Acme.io", "acme.io", "corp.acme.io"]
            ),
            await auth.as_member(owner),
        )
        assert list(org.allowed_domains) == ["acme.io", "corp.acme.io"]
        await expect_error(
            auth.call(
                "SetAllowedDomains",
                pb.SetAllowedDomainsRequest(organization_id=owner.org_id, domains=["not a domain"]),
                await auth.as_member(owner),
            ),
            "invalid_argument",
        )
        suggestions = await auth.call("GetDomainSuggestions", principal=await auth.as_member(owner))
        assert list(suggestions.domains) == ["acme.io"]


class TestTenancy:
    """A user of org A asking for anything of org B gets not found, never forbidden."""

    async def test_every_org_method_of_another_org_is_not_found(self, auth: AuthApi) -> None:
        a, b = await auth.sign_up(), await auth.sign_up()
        other = b.org_id
        principal = await auth.as_member(a)
        calls = [
            ("GetOrganization", pb.OrganizationRef(organization_id=other)),
            ("UpdateOrganization", pb.UpdateOrganizationRequest(organization_id=other, name="x")),
            ("SetAllowedDomains", pb.SetAllowedDomainsRequest(organization_id=other, domains=[])),
            ("ListMembers", pb.OrganizationRef(organization_id=other)),
            (
                "UpdateMemberRole",
                pb.UpdateMemberRoleRequest(organization_id=other, member_id=b.user_id, role="member"),
            ),
            ("RemoveMember", pb.MemberRef(organization_id=other, member_id=b.user_id)),
            ("LeaveOrganization", pb.OrganizationRef(organization_id=other)),
            ("ListInvitations", pb.OrganizationRef(organization_id=other)),
            (
                "CreateInvitation",
                pb.CreateInvitationRequest(organization_id=other, email="x@example.com", role="member"),
            ),
            ("CancelInvitation", pb.InvitationRef(organization_id=other, invitation_id=b.user_id)),
            ("SetActiveOrganization", pb.SetActiveOrganizationRequest(organization_id=other)),
        ]
        for method, request in calls:
            await expect_error(
                auth.call(method, request, principal), "organization_not_found", grpc.StatusCode.NOT_FOUND
            )
