"""Super-admins: status, listing, impersonation with audit (auth.md §5.11; §10 lines 29-30)."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest_asyncio
from proliferate.protos.auth.v1 import auth_pb2 as pb

from ..conftest import Account, AuthApi, StartAuth, expect_error  # noqa: TID252 - the shared test helpers

ADMIN_EMAIL = "root@example.com"


@pytest_asyncio.fixture
async def admin_auth(start_auth: StartAuth) -> AuthApi:
    return await start_auth(("grpc", "worker"), SUPER_ADMIN_EMAILS=f"{ADMIN_EMAIL}, other-admin@example.com")


async def verified(auth: AuthApi, email: str) -> Account:
    account = await auth.sign_up(email)
    await auth.call("ResendVerification", pb.ResendVerificationRequest(email=email))
    link = await auth.wait_for_mail(email, "verification")
    result = await auth.call("VerifyEmail", pb.VerifyEmailRequest(token=link.split("token=", 1)[1]))
    account.token = result.token
    return account


class TestStatus:
    async def test_a_regular_user_is_not_a_super_admin_and_cannot_impersonate(
        self, admin_auth: AuthApi
    ) -> None:
        user, target = await admin_auth.sign_up(), await admin_auth.sign_up()
        principal = await admin_auth.as_member(user)
        assert not (await admin_auth.call("GetAdminStatus", principal=principal)).is_super_admin
        await expect_error(
            admin_auth.call(
                "StartImpersonation",
                pb.StartImpersonationRequest(user_id=target.user_id, organization_id=target.org_id),
                principal,
            ),
            "forbidden",
            grpc.StatusCode.PERMISSION_DENIED,
        )
        await expect_error(admin_auth.call("AdminListUsers", pb.AdminListRequest(), principal), "forbidden")

    async def test_a_listed_but_unverified_email_is_not_a_super_admin(self, admin_auth: AuthApi) -> None:
        unverified, target = await admin_auth.sign_up(ADMIN_EMAIL), await admin_auth.sign_up()
        principal = await admin_auth.as_member(unverified)
        assert not principal.is_super_admin
        assert not (await admin_auth.call("GetAdminStatus", principal=principal)).is_super_admin
        await expect_error(
            admin_auth.call(
                "StartImpersonation",
                pb.StartImpersonationRequest(user_id=target.user_id, organization_id=target.org_id),
                principal,
            ),
            "forbidden",
        )

    async def test_a_verified_listed_email_is_a_super_admin_and_lists_with_pages(
        self, admin_auth: AuthApi
    ) -> None:
        admin = await verified(admin_auth, ADMIN_EMAIL)
        for _ in range(3):
            await admin_auth.sign_up()
        principal = await admin_auth.as_member(admin)
        assert (
            principal.is_super_admin
            and (await admin_auth.call("GetAdminStatus", principal=principal)).is_super_admin
        )
        first = await admin_auth.call("AdminListUsers", pb.AdminListRequest(limit=2), principal)
        second = await admin_auth.call(
            "AdminListUsers", pb.AdminListRequest(limit=2, cursor=first.next_cursor), principal
        )
        assert len(first.users) == 2 and len(second.users) == 2 and not second.next_cursor
        assert {u.id for u in first.users}.isdisjoint({u.id for u in second.users})
        found = await admin_auth.call("AdminListUsers", pb.AdminListRequest(q="ROOT@"), principal)
        assert [u.email for u in found.users] == [ADMIN_EMAIL]
        orgs = await admin_auth.call("AdminListOrganizations", pb.AdminListRequest(limit=100), principal)
        assert len(orgs.organizations) == 4
        await expect_error(
            admin_auth.call("AdminListUsers", pb.AdminListRequest(limit=500), principal), "invalid_argument"
        )


class TestImpersonation:
    async def test_a_non_member_pair_is_409_not_a_member(self, admin_auth: AuthApi) -> None:
        admin = await verified(admin_auth, ADMIN_EMAIL)
        a, b = await admin_auth.sign_up(), await admin_auth.sign_up()
        await expect_error(
            admin_auth.call(
                "StartImpersonation",
                pb.StartImpersonationRequest(user_id=a.user_id, organization_id=b.org_id),
                await admin_auth.as_member(admin),
            ),
            "not_a_member",
            grpc.StatusCode.FAILED_PRECONDITION,
        )

    async def test_success_is_audited_published_carried_in_the_principal_and_ends_after_24h(
        self, admin_auth: AuthApi
    ) -> None:
        admin, target = await verified(admin_auth, ADMIN_EMAIL), await admin_auth.sign_up()
        status = await admin_auth.call(
            "StartImpersonation",
            pb.StartImpersonationRequest(user_id=target.user_id, organization_id=target.org_id),
            await admin_auth.as_member(admin),
        )
        assert status.impersonation.user_id == target.user_id
        principal = await admin_auth.authenticate(admin.token)
        assert (
            principal.user_id,
            principal.organization_id,
            principal.impersonator_user_id,
            principal.role,
        ) == (
            target.user_id,
            target.org_id,
            admin.user_id,
            "owner",
        )
        assert not principal.is_super_admin
        me = await admin_auth.call("GetMe", principal=principal)
        assert (me.user.id, me.impersonator_user_id) == (target.user_id, admin.user_id)
        audit = await admin_auth.rows("SELECT action, target_user_id::text AS target FROM admin_audit_log")
        assert [(r.action, r.target) for r in audit] == [("impersonation_started", target.user_id)]
        assert "proliferate.auth.impersonation.started" in await admin_auth.outbox_subjects()
        admin_auth.clock.advance(timedelta(hours=24, seconds=1))
        after = await admin_auth.authenticate(admin.token)
        assert (after.user_id, after.impersonator_user_id) == (admin.user_id, "")
        assert "proliferate.auth.impersonation.stopped" in await admin_auth.outbox_subjects()

    async def test_the_overlay_ends_when_the_target_leaves_the_org(self, admin_auth: AuthApi) -> None:
        admin, owner, target = (
            await verified(admin_auth, ADMIN_EMAIL),
            await admin_auth.sign_up(),
            await admin_auth.sign_up(),
        )
        team = await admin_auth.create_org(owner, "Team")
        await admin_auth.add_member(owner, team, target)
        await admin_auth.call(
            "StartImpersonation",
            pb.StartImpersonationRequest(user_id=target.user_id, organization_id=team),
            await admin_auth.as_member(admin),
        )
        assert (await admin_auth.authenticate(admin.token)).impersonator_user_id == admin.user_id
        await admin_auth.call(
            "LeaveOrganization",
            pb.OrganizationRef(organization_id=team),
            await admin_auth.authenticate(target.token, team),
        )
        after = await admin_auth.authenticate(admin.token)
        assert (after.user_id, after.impersonator_user_id) == (admin.user_id, "")

    async def test_switch_and_stop_are_audited(self, admin_auth: AuthApi) -> None:
        admin, owner, target = (
            await verified(admin_auth, ADMIN_EMAIL),
            await admin_auth.sign_up(),
            await admin_auth.sign_up(),
        )
        team = await admin_auth.create_org(owner, "Team")
        await admin_auth.add_member(owner, team, target)
        admin_principal = await admin_auth.as_member(admin)
        await admin_auth.call(
            "StartImpersonation",
            pb.StartImpersonationRequest(user_id=target.user_id, organization_id=target.org_id),
            admin_principal,
        )
        switched = await admin_auth.call(
            "SwitchImpersonatedOrganization",
            pb.SwitchImpersonatedOrganizationRequest(organization_id=team),
            await admin_auth.authenticate(admin.token),
        )
        assert switched.impersonation.organization_id == team
        assert (await admin_auth.authenticate(admin.token)).organization_id == team
        stopped = await admin_auth.call(
            "StopImpersonation", principal=await admin_auth.authenticate(admin.token)
        )
        assert not stopped.HasField("impersonation")
        actions = [
            r.action for r in await admin_auth.rows("SELECT action FROM admin_audit_log ORDER BY created_at")
        ]
        assert actions == ["impersonation_started", "impersonation_switched", "impersonation_stopped"]

    async def test_a_super_admin_is_never_impersonated_and_keys_never_impersonate(
        self, admin_auth: AuthApi
    ) -> None:
        admin, other = (
            await verified(admin_auth, ADMIN_EMAIL),
            await verified(admin_auth, "other-admin@example.com"),
        )
        await expect_error(
            admin_auth.call(
                "StartImpersonation",
                pb.StartImpersonationRequest(user_id=other.user_id, organization_id=other.org_id),
                await admin_auth.as_member(admin),
            ),
            "forbidden",
        )
        key = await admin_auth.call(
            "CreateApiKey", pb.CreateApiKeyRequest(name="k"), await admin_auth.as_member(admin)
        )
        await expect_error(
            admin_auth.call(
                "StartImpersonation",
                pb.StartImpersonationRequest(user_id=other.user_id, organization_id=other.org_id),
                await admin_auth.authenticate(key.key),
            ),
            "forbidden",
        )
