"""Members and roles: role matrix, last-owner guard under concurrency, personal org rule
(auth.md §5.7; §10 lines 16, 21, 22)."""

from __future__ import annotations

import asyncio

import grpc
from proliferate.protos.auth.v1 import auth_pb2 as pb

from ..conftest import Account, AuthApi, expect_error  # noqa: TID252 - the shared test helpers


async def team_of(auth: AuthApi, *roles: str) -> tuple[str, Account, list[tuple[Account, str]]]:
    """An org owned by a new user, with one member per role in `roles` (member ids returned)."""
    owner = await auth.sign_up(name="Owner")
    org_id = await auth.create_org(owner, "Team")
    others = []
    for role in roles:
        account = await auth.sign_up()
        member_id = await auth.add_member(owner, org_id, account, "admin" if role == "owner" else role)
        if role == "owner":
            await auth.call(
                "UpdateMemberRole",
                pb.UpdateMemberRoleRequest(organization_id=org_id, member_id=member_id, role="owner"),
                await auth.authenticate(owner.token, org_id),
            )
        others.append((account, member_id))
    return org_id, owner, others


async def owner_member_id(auth: AuthApi, org_id: str, account: Account) -> str:
    listed = await auth.call(
        "ListMembers",
        pb.OrganizationRef(organization_id=org_id),
        await auth.authenticate(account.token, org_id),
    )
    return next(m.id for m in listed.members if m.user_id == account.user_id)


class TestRoleChange:
    async def test_an_owner_changes_a_role_and_the_event_carries_both_roles(
        self, auth_worker: AuthApi
    ) -> None:
        auth = auth_worker
        org_id, owner, [(member, member_id)] = await team_of(auth, "member")
        updated = await auth.call(
            "UpdateMemberRole",
            pb.UpdateMemberRoleRequest(organization_id=org_id, member_id=member_id, role="admin"),
            await auth.authenticate(owner.token, org_id),
        )
        assert (updated.role, updated.email) == ("admin", member.email)
        assert (await auth.authenticate(member.token, org_id)).role == "admin"
        assert "proliferate.auth.member.updated" in await auth.outbox_subjects()

    async def test_an_admin_changing_a_role_is_forbidden(self, auth_worker: AuthApi) -> None:
        auth = auth_worker
        org_id, _, [(admin, _), (_, member_id)] = await team_of(auth, "admin", "member")
        await expect_error(
            auth.call(
                "UpdateMemberRole",
                pb.UpdateMemberRoleRequest(organization_id=org_id, member_id=member_id, role="admin"),
                await auth.authenticate(admin.token, org_id),
            ),
            "forbidden",
            grpc.StatusCode.PERMISSION_DENIED,
        )

    async def test_two_owners_demoting_each_other_at_once_one_wins_the_other_is_last_owner(
        self, auth_worker: AuthApi
    ) -> None:
        auth = auth_worker
        org_id, first, [(second, second_member)] = await team_of(auth, "owner")
        first_member = await owner_member_id(auth, org_id, first)
        results = await asyncio.gather(
            auth.call(
                "UpdateMemberRole",
                pb.UpdateMemberRoleRequest(organization_id=org_id, member_id=second_member, role="member"),
                await auth.authenticate(first.token, org_id),
            ),
            auth.call(
                "UpdateMemberRole",
                pb.UpdateMemberRoleRequest(organization_id=org_id, member_id=first_member, role="member"),
                await auth.authenticate(second.token, org_id),
            ),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, Exception)]
        assert len(errors) == 1 and getattr(errors[0], "code", "") == "last_owner"
        owners = await auth.scalar(
            "SELECT count(*) FROM members WHERE organization_id = :o AND role = 'owner'", o=org_id
        )
        assert owners == 1

    async def test_an_unknown_role_is_invalid(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        await expect_error(
            auth.call(
                "UpdateMemberRole",
                pb.UpdateMemberRoleRequest(organization_id=owner.org_id, member_id=owner.user_id, role="god"),
                await auth.as_member(owner),
            ),
            "invalid_argument",
        )


class TestLastOwner:
    async def test_the_only_owner_can_neither_leave_nor_be_demoted_nor_removed(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        org_id = await auth.create_org(owner, "Solo")
        principal = await auth.authenticate(owner.token, org_id)
        member_id = await owner_member_id(auth, org_id, owner)
        await expect_error(
            auth.call("LeaveOrganization", pb.OrganizationRef(organization_id=org_id), principal),
            "last_owner",
            grpc.StatusCode.FAILED_PRECONDITION,
        )
        await expect_error(
            auth.call(
                "UpdateMemberRole",
                pb.UpdateMemberRoleRequest(organization_id=org_id, member_id=member_id, role="admin"),
                principal,
            ),
            "last_owner",
        )
        await expect_error(
            auth.call("RemoveMember", pb.MemberRef(organization_id=org_id, member_id=member_id), principal),
            "last_owner",
        )

    async def test_the_personal_owner_stays_in_the_personal_org(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        principal = await auth.as_member(owner)
        await expect_error(
            auth.call("LeaveOrganization", pb.OrganizationRef(organization_id=owner.org_id), principal),
            "personal_org",
        )


class TestRemoval:
    async def test_an_owner_removes_a_member_who_then_loses_access(self, auth_worker: AuthApi) -> None:
        auth = auth_worker
        org_id, owner, [(member, member_id)] = await team_of(auth, "member")
        await auth.call(
            "RemoveMember",
            pb.MemberRef(organization_id=org_id, member_id=member_id),
            await auth.authenticate(owner.token, org_id),
        )
        assert "proliferate.auth.member.removed" in await auth.outbox_subjects()
        await expect_error(auth.authenticate(member.token, org_id), "organization_not_found")
        assert (await auth.as_member(member)).organization_id == member.org_id

    async def test_a_member_leaves(self, auth_worker: AuthApi) -> None:
        auth = auth_worker
        org_id, _, [(member, _)] = await team_of(auth, "member")
        await auth.call(
            "LeaveOrganization",
            pb.OrganizationRef(organization_id=org_id),
            await auth.authenticate(member.token, org_id),
        )
        assert await auth.scalar("SELECT count(*) FROM members WHERE organization_id = :o", o=org_id) == 1

    async def test_a_member_removing_someone_is_forbidden(self, auth_worker: AuthApi) -> None:
        auth = auth_worker
        org_id, _, [(member, _), (_, other_id)] = await team_of(auth, "member", "member")
        await expect_error(
            auth.call(
                "RemoveMember",
                pb.MemberRef(organization_id=org_id, member_id=other_id),
                await auth.authenticate(member.token, org_id),
            ),
            "forbidden",
        )

    async def test_get_membership_for_services(self, auth_worker: AuthApi) -> None:
        auth = auth_worker
        org_id, _owner, [(member, _)] = await team_of(auth, "member")
        found = await auth.call(
            "GetMembership", pb.GetMembershipRequest(user_id=member.user_id, organization_id=org_id)
        )
        assert found.role == "member"
        stranger = await auth.sign_up()
        await expect_error(
            auth.call(
                "GetMembership", pb.GetMembershipRequest(user_id=stranger.user_id, organization_id=org_id)
            ),
            "member_not_found",
            grpc.StatusCode.NOT_FOUND,
        )
