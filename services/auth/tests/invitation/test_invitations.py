"""Invitations (auth.md §3, §5.6; §10 lines 16-20, 34)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import grpc
import nats
from nats.js.api import ConsumerConfig
from proliferate.auth.bootstrap import Settings, build_context
from proliferate.auth.mail.consumers import mailer_consumer
from proliferate.devkit.pytest_plugin import TEST_SERVICE_AUTH_SECRET, Infra
from proliferate.kit.bus import Consumer, JetStreamPublisher, ensure_streams
from proliferate.kit.outbox import Relay
from proliferate.kit.settings import load_settings
from proliferate.kit.topology import STREAMS
from proliferate.protos.auth.v1 import auth_pb2 as pb

from ..conftest import APP_URL, SIGNING_KEYS, Account, AuthApi, StartAuth, expect_error  # noqa: TID252 - the shared test helpers


def token_of(link: str) -> str:
    return link.rsplit("/", 1)[1]


async def invite(
    auth: AuthApi, inviter: Account, org_id: str, email: str, role: str = "member", resend: bool = False
) -> Any:
    return await auth.call(
        "CreateInvitation",
        pb.CreateInvitationRequest(organization_id=org_id, email=email, role=role, resend=resend),
        await auth.authenticate(inviter.token, org_id),
    )


class TestCreate:
    async def test_a_member_cannot_invite_an_admin_can(self, auth_worker: AuthApi) -> None:
        auth = auth_worker
        owner, admin, member = await auth.sign_up(), await auth.sign_up(), await auth.sign_up()
        org_id = await auth.create_org(owner, "Team")
        await auth.add_member(owner, org_id, admin, "admin")
        await auth.add_member(owner, org_id, member, "member")
        await expect_error(
            invite(auth, member, org_id, "new@example.com"), "forbidden", grpc.StatusCode.PERMISSION_DENIED
        )
        created = await invite(auth, admin, org_id, "new@example.com", "admin")
        assert (created.invitation.status, created.invitation.role, created.token) == ("pending", "admin", "")
        link = await auth.wait_for_mail("new@example.com", "invitation")
        assert link.startswith("https://app.proliferate.test/invite/")

    async def test_a_second_pending_invitation_is_409_and_resend_extends_it_with_one_new_mail(
        self, auth_worker: AuthApi
    ) -> None:
        auth = auth_worker
        owner = await auth.sign_up()
        first = await invite(auth, owner, owner.org_id, "twice@example.com")
        await auth.wait_for_mail("twice@example.com", "invitation")
        await expect_error(
            invite(auth, owner, owner.org_id, "Twice@Example.com"),
            "invitation_exists",
            grpc.StatusCode.ALREADY_EXISTS,
        )
        auth.clock.advance(timedelta(days=3))
        again = await invite(auth, owner, owner.org_id, "twice@example.com", resend=True)
        assert again.invitation.id == first.invitation.id
        assert (
            again.invitation.expires_at.ToDatetime() - first.invitation.expires_at.ToDatetime()
            == timedelta(days=3)
        )
        new_link = await auth.wait_for_mail("twice@example.com", "invitation", count=2)
        old_link = (await auth.mails("twice@example.com", "invitation"))[0]
        assert len(await auth.mails("twice@example.com", "invitation")) == 2
        # The resend rotated the token: only the newest link works.
        await expect_error(
            auth.call("GetInvitationPreview", pb.InvitationToken(token=token_of(old_link))),
            "invitation_not_found",
        )
        assert (
            await auth.call("GetInvitationPreview", pb.InvitationToken(token=token_of(new_link)))
        ).role == "member"

    async def test_inviting_a_member_is_409_already_member(self, auth_worker: AuthApi) -> None:
        auth = auth_worker
        owner, member = await auth.sign_up(), await auth.sign_up()
        org_id = await auth.create_org(owner, "Team")
        await auth.add_member(owner, org_id, member)
        await expect_error(invite(auth, owner, org_id, member.email), "already_member")

    async def test_owner_is_not_an_invitable_role(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        await expect_error(
            invite(auth, owner, owner.org_id, "x@example.com", role="owner"), "invalid_argument"
        )

    async def test_with_email_disabled_the_link_is_returned_once(self, start_auth: StartAuth) -> None:
        auth = await start_auth(MAILER="disabled")
        owner, invitee = await auth.sign_up(), await auth.sign_up("copy@example.com")
        created = await invite(auth, owner, owner.org_id, "copy@example.com")
        assert created.token and created.link == f"https://app.proliferate.test/invite/{created.token}"
        member = await auth.call(
            "AcceptInvitation", pb.InvitationToken(token=created.token), await auth.as_member(invitee)
        )
        assert (member.organization_id, member.role) == (owner.org_id, "member")


class TestAnswer:
    async def test_preview_shows_org_inviter_role_and_a_masked_email(self, auth_worker: AuthApi) -> None:
        auth = auth_worker
        owner = await auth.sign_up(name="Olga")
        org_id = await auth.create_org(owner, "Acme")
        await invite(auth, owner, org_id, "maria@example.com", "admin")
        preview = await auth.call(
            "GetInvitationPreview",
            pb.InvitationToken(token=token_of(await auth.wait_for_mail("maria@example.com", "invitation"))),
        )
        assert (preview.organization_name, preview.inviter_name, preview.role, preview.masked_email) == (
            "Acme",
            "Olga",
            "admin",
            "ma***@example.com",
        )

    async def test_accepting_with_another_email_is_403_invitation_email_mismatch(
        self, auth_worker: AuthApi
    ) -> None:
        auth = auth_worker
        owner, intruder = await auth.sign_up(), await auth.sign_up("intruder@example.com")
        await invite(auth, owner, owner.org_id, "rightful@example.com")
        token = token_of(await auth.wait_for_mail("rightful@example.com", "invitation"))
        await expect_error(
            auth.call("AcceptInvitation", pb.InvitationToken(token=token), await auth.as_member(intruder)),
            "invitation_email_mismatch",
            grpc.StatusCode.PERMISSION_DENIED,
        )
        assert await auth.scalar("SELECT status FROM invitations") == "pending"

    async def test_accepting_an_expired_invitation_is_409_and_it_becomes_expired(
        self, auth_worker: AuthApi
    ) -> None:
        auth = auth_worker
        owner, invitee = await auth.sign_up(), await auth.sign_up("late@example.com")
        await invite(auth, owner, owner.org_id, "late@example.com")
        token = token_of(await auth.wait_for_mail("late@example.com", "invitation"))
        principal = await auth.as_member(invitee)
        auth.clock.advance(timedelta(days=7, seconds=1))
        await expect_error(
            auth.call("AcceptInvitation", pb.InvitationToken(token=token), principal),
            "invitation_expired",
            grpc.StatusCode.FAILED_PRECONDITION,
        )
        assert await auth.scalar("SELECT status FROM invitations") == "expired"
        assert "proliferate.auth.invitation.expired" in await auth.outbox_subjects()
        await expect_error(
            auth.call("AcceptInvitation", pb.InvitationToken(token=token), principal), "invitation_expired"
        )

    async def test_two_concurrent_accepts_by_the_invitee_both_return_the_one_membership(
        self, auth_worker: AuthApi
    ) -> None:
        auth = auth_worker
        owner, invitee = await auth.sign_up(), await auth.sign_up("twotabs@example.com")
        await invite(auth, owner, owner.org_id, "twotabs@example.com")
        token = token_of(await auth.wait_for_mail("twotabs@example.com", "invitation"))
        principal = await auth.as_member(invitee)
        members = await asyncio.gather(
            *(auth.call("AcceptInvitation", pb.InvitationToken(token=token), principal) for _ in range(2))
        )
        assert members[0].id == members[1].id
        assert (
            await auth.scalar("SELECT count(*) FROM members WHERE organization_id = :o", o=owner.org_id) == 2
        )
        assert (await auth.outbox_subjects()).count("proliferate.auth.invitation.accepted") == 1

    async def test_an_accepted_invitation_cannot_be_rejected_and_a_rejected_one_not_accepted(
        self, auth_worker: AuthApi
    ) -> None:
        auth = auth_worker
        owner = await auth.sign_up()
        a, b = await auth.sign_up("a-inv@example.com"), await auth.sign_up("b-inv@example.com")
        await invite(auth, owner, owner.org_id, a.email)
        await invite(auth, owner, owner.org_id, b.email)
        token_a = token_of(await auth.wait_for_mail(a.email, "invitation"))
        token_b = token_of(await auth.wait_for_mail(b.email, "invitation"))
        await auth.call("AcceptInvitation", pb.InvitationToken(token=token_a), await auth.as_member(a))
        await expect_error(
            auth.call("RejectInvitation", pb.InvitationToken(token=token_a), await auth.as_member(a)),
            "invitation_not_pending",
        )
        rejected = await auth.call(
            "RejectInvitation", pb.InvitationToken(token=token_b), await auth.as_member(b)
        )
        assert rejected.status == "rejected"
        await expect_error(
            auth.call("AcceptInvitation", pb.InvitationToken(token=token_b), await auth.as_member(b)),
            "invitation_not_pending",
        )

    async def test_an_admin_cancels_a_member_cannot(self, auth_worker: AuthApi) -> None:
        auth = auth_worker
        owner, member = await auth.sign_up(), await auth.sign_up()
        org_id = await auth.create_org(owner, "Team")
        await auth.add_member(owner, org_id, member)
        created = await invite(auth, owner, org_id, "c@example.com")
        ref = pb.InvitationRef(organization_id=org_id, invitation_id=created.invitation.id)
        await expect_error(
            auth.call("CancelInvitation", ref, await auth.authenticate(member.token, org_id)), "forbidden"
        )
        canceled = await auth.call("CancelInvitation", ref, await auth.authenticate(owner.token, org_id))
        assert canceled.status == "canceled"
        await expect_error(
            auth.call("CancelInvitation", ref, await auth.authenticate(owner.token, org_id)),
            "invitation_not_pending",
        )
        listed = await auth.call(
            "ListInvitations",
            pb.OrganizationRef(organization_id=org_id),
            await auth.authenticate(member.token, org_id),
        )
        assert [i.status for i in listed.invitations if i.id == created.invitation.id] == ["canceled"]

    async def test_an_unknown_token_is_not_found(self, auth: AuthApi) -> None:
        await expect_error(
            auth.call("GetInvitationPreview", pb.InvitationToken(token="nope")), "invitation_not_found"
        )


class TestMailer:
    async def test_the_same_invitation_created_event_delivered_twice_sends_one_mail(
        self, auth: AuthApi, infra: Infra
    ) -> None:
        owner = await auth.sign_up()
        await invite(auth, owner, owner.org_id, "once@example.com")
        nc = await nats.connect(infra.nats_url)
        try:
            js = nc.jetstream()
            await ensure_streams(js, STREAMS["auth"].specs("auth"))
            await Relay(auth.db, JetStreamPublisher(js)).publish_batch()
            # Read the published event as a consumer would, then hand the same message over twice.
            sub = await js.pull_subscribe(
                "proliferate.auth.invitation.created",
                durable="probe",
                stream="PROLIFERATE_AUTH",
                config=ConsumerConfig(),
            )
            [msg] = await sub.fetch(1, timeout=5)
            settings: Any = type("S", (), {})
            ctx = build_context(_runtime(auth, settings))
            consumer = Consumer("auth", mailer_consumer(ctx), auth.db, js)
            first, second = await consumer.handle_message(msg), await consumer.handle_message(msg)
            assert (first.outcome.value, second.outcome.value) == ("ack", "ack")
            assert consumer.stats.handled == 1 and consumer.stats.skipped_duplicates == 1
            assert len(await auth.mails("once@example.com", "invitation")) == 1
        finally:
            await nc.drain()


def _runtime(auth: AuthApi, _: Any) -> Any:
    """What build_context reads from a runtime, for a consumer run by hand in the test."""
    settings = load_settings(
        Settings,
        {
            "DATABASE_URL": auth.db.url,
            "NATS_URL": "nats://127.0.0.1:4222",
            "SERVICE_AUTH_SECRET": TEST_SERVICE_AUTH_SECRET,
            "AUTH_SIGNING_KEYS": SIGNING_KEYS,
            "APP_URL": APP_URL,
            "MAILER": "record",
            "PASSWORD_HASH_MEMORY_KIB": "8192",
            "PASSWORD_HASH_TIME_COST": "1",
        },
    )
    return type("R", (), {"settings": settings, "db": auth.db, "clients": None})()
