"""Password sign-in, rate limits, verification, authentication of a sign-in (auth.md §5.2,
§5.4, §5.10; §10 lines 5-7, 12-14; issue B4, B5)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
from proliferate.devkit.pytest_plugin import session_log_path
from proliferate.protos.auth.v1 import auth_pb2 as pb

from ..conftest import PASSWORD, AuthApi, StartAuth, expect_error  # noqa: TID252 - the shared test helpers


class TestPasswordSignIn:
    async def test_signs_in_with_the_right_password_into_the_personal_org(self, auth: AuthApi) -> None:
        account = await auth.sign_up()
        result = await auth.sign_in(account.email.upper())
        assert result.token and result.token != account.token
        principal = await auth.authenticate(result.token)
        assert (principal.user_id, principal.organization_id, principal.role) == (
            account.user_id,
            account.org_id,
            "owner",
        )

    async def test_wrong_password_and_unknown_email_give_the_same_answer_and_the_same_work(
        self, auth: AuthApi
    ) -> None:
        account = await auth.sign_up()
        before = auth.hasher.verifications
        wrong = await expect_error(auth.sign_in(account.email, "wrong password!"), "invalid_credentials")
        unknown = await expect_error(
            auth.sign_in("nobody@example.com", "wrong password!"), "invalid_credentials"
        )
        assert (wrong.kind, wrong.message, wrong.details) == (unknown.kind, unknown.message, unknown.details)
        # An unknown email still verifies one (dummy) argon2id hash: the same cost as a wrong
        # password. The time itself is measured in bench_auth (tests never assert timings).
        assert auth.hasher.verifications - before == 2

    async def test_the_stored_password_is_an_argon2id_hash_and_never_logged(self, auth: AuthApi) -> None:
        account = await auth.sign_up()
        await auth.sign_in(account.email)
        stored = await auth.scalar("SELECT password_hash FROM accounts")
        assert stored.startswith("$argon2id$") and PASSWORD not in stored
        assert PASSWORD not in session_log_path().read_text()
        assert account.token not in session_log_path().read_text()
        assert (
            await auth.scalar(
                "SELECT count(*) FROM sign_ins WHERE token_hash = sha256(convert_to(:t, 'UTF8'))",
                t=account.token,
            )
            == 1
        )


class TestRateLimit:
    async def test_the_eleventh_failure_for_one_email_is_429_with_retry_after_across_two_replicas(
        self, start_auth: StartAuth
    ) -> None:
        one, two = await start_auth(), await start_auth()
        account = await one.sign_up()
        for attempt in range(10):
            replica = one if attempt % 2 else two
            await expect_error(replica.sign_in(account.email, "wrong password!"), "invalid_credentials")
        error = await expect_error(two.sign_in(account.email, "wrong password!"), "too_many_requests")
        assert error.kind.value == "resource_exhausted"
        assert 0 < int(error.details["retry_after_s"]) <= 15 * 60
        # While the window is full even the right password is refused, on both replicas.
        await expect_error(one.sign_in(account.email), "too_many_requests")

    async def test_twenty_failures_in_a_minute_are_refused_after_the_threshold_then_allowed_after_the_window(
        self, auth: AuthApi
    ) -> None:
        account = await auth.sign_up()
        codes = []
        for _ in range(20):
            try:
                await auth.sign_in(account.email, "wrong password!")
            except Exception as exc:
                codes.append(getattr(exc, "code", ""))
            auth.clock.advance(timedelta(seconds=2))
        assert codes == ["invalid_credentials"] * 10 + ["too_many_requests"] * 10
        auth.clock.advance(timedelta(minutes=15))
        assert (await auth.sign_in(account.email)).token

    async def test_failures_per_ip_are_limited_across_emails(self, auth: AuthApi) -> None:
        for i in range(50):
            await expect_error(
                auth.sign_in(f"u{i}@example.com", "wrong password!", ip="203.0.113.9"), "invalid_credentials"
            )
        await expect_error(auth.sign_in("other@example.com", "x" * 9, ip="203.0.113.9"), "too_many_requests")
        await expect_error(
            auth.sign_in("other@example.com", "x" * 9, ip="203.0.113.10"), "invalid_credentials"
        )


class TestEmailVerification:
    async def test_required_verification_refuses_until_the_mailed_link_is_used_once(
        self, start_auth: StartAuth
    ) -> None:
        auth = await start_auth(("grpc", "worker"), REQUIRE_EMAIL_VERIFICATION="true")
        request = pb.SignUpRequest(email="verify@example.com", password=PASSWORD, name="Vera")
        await expect_error(
            auth.call("SignUp", request), "email_not_verified", grpc.StatusCode.PERMISSION_DENIED
        )
        await expect_error(auth.sign_in("verify@example.com"), "email_not_verified")
        link = await auth.wait_for_mail("verify@example.com", "verification")
        token = link.split("token=", 1)[1]
        result = await auth.call("VerifyEmail", pb.VerifyEmailRequest(token=token))
        assert (await auth.authenticate(result.token)).role == "owner"
        assert (await auth.sign_in("verify@example.com")).token
        await expect_error(
            auth.call("VerifyEmail", pb.VerifyEmailRequest(token=token)),
            "link_used",
            grpc.StatusCode.FAILED_PRECONDITION,
        )
        assert "proliferate.auth.user.verified" in await auth.outbox_subjects()

    async def test_resend_sends_a_new_link_at_most_three_times_an_hour(self, start_auth: StartAuth) -> None:
        auth = await start_auth(("grpc", "worker"), REQUIRE_EMAIL_VERIFICATION="true")
        await expect_error(
            auth.call("SignUp", pb.SignUpRequest(email="again@example.com", password=PASSWORD, name="A")),
            "email_not_verified",
        )
        await auth.wait_for_mail("again@example.com", "verification")
        for _ in range(3):
            await auth.call("ResendVerification", pb.ResendVerificationRequest(email="again@example.com"))
        await expect_error(
            auth.call("ResendVerification", pb.ResendVerificationRequest(email="again@example.com")),
            "too_many_requests",
        )
        await auth.wait_for_mail("again@example.com", "verification", count=4)
        # Unknown emails get the same (empty) answer.
        await auth.call("ResendVerification", pb.ResendVerificationRequest(email="nobody@example.com"))

    async def test_an_expired_link_is_refused(self, start_auth: StartAuth) -> None:
        auth = await start_auth(("grpc", "worker"), REQUIRE_EMAIL_VERIFICATION="true")
        await expect_error(
            auth.call("SignUp", pb.SignUpRequest(email="late@example.com", password=PASSWORD, name="L")),
            "email_not_verified",
        )
        link = await auth.wait_for_mail("late@example.com", "verification")
        auth.clock.advance(timedelta(hours=25))
        await expect_error(
            auth.call("VerifyEmail", pb.VerifyEmailRequest(token=link.split("token=", 1)[1])), "link_expired"
        )


class TestPasswordReset:
    async def test_the_mailed_link_sets_a_new_password_once_and_revokes_every_sign_in(
        self, auth_worker: AuthApi
    ) -> None:
        auth = auth_worker
        account = await auth.sign_up("reset@example.com")
        await auth.call("RequestPasswordReset", pb.RequestPasswordResetRequest(email="reset@example.com"))
        link = await auth.wait_for_mail("reset@example.com", "password_reset")
        token = link.split("token=", 1)[1]
        new_password = "a brand new passphrase"
        await auth.call("ResetPassword", pb.ResetPasswordRequest(token=token, password=new_password))
        await expect_error(auth.authenticate(account.token), "unauthenticated")
        await expect_error(auth.sign_in("reset@example.com"), "invalid_credentials")
        assert (await auth.sign_in("reset@example.com", new_password)).token
        await expect_error(
            auth.call("ResetPassword", pb.ResetPasswordRequest(token=token, password=new_password)),
            "link_used",
        )
        assert "proliferate.auth.sign_in.revoked" in await auth.outbox_subjects()


class TestAuthenticate:
    async def test_unknown_revoked_or_expired_sign_ins_are_unauthenticated(self, auth: AuthApi) -> None:
        await expect_error(
            auth.authenticate("no-such-token"), "unauthenticated", grpc.StatusCode.UNAUTHENTICATED
        )
        revoked = await auth.sign_up()
        await auth.call("SignOut", principal=await auth.as_member(revoked))
        await expect_error(auth.authenticate(revoked.token), "unauthenticated")
        assert "proliferate.auth.sign_in.revoked" in await auth.outbox_subjects()
        expired = await auth.sign_up()
        auth.clock.advance(timedelta(days=7, seconds=1))
        await expect_error(auth.authenticate(expired.token), "unauthenticated")

    async def test_a_used_sign_in_slides_its_expiry(self, auth: AuthApi) -> None:
        account = await auth.sign_up()
        for _ in range(3):
            auth.clock.advance(timedelta(days=5))
            assert (await auth.authenticate(account.token)).user_id == account.user_id

    async def test_a_sign_in_whose_active_org_the_user_left_resolves_to_the_first_remaining_org(
        self, auth_worker: AuthApi
    ) -> None:
        auth = auth_worker
        owner, member = await auth.sign_up(), await auth.sign_up()
        team = await auth.create_org(owner, "Team")
        await auth.add_member(owner, team, member)
        assert (await auth.as_member(member)).organization_id == team  # accepting made it active
        await auth.call(
            "LeaveOrganization", pb.OrganizationRef(organization_id=team), await auth.as_member(member)
        )
        principal = await auth.as_member(member)
        assert (principal.organization_id, principal.role) == (member.org_id, "owner")

    async def test_requested_org_must_be_one_of_the_users(self, auth: AuthApi) -> None:
        a, b = await auth.sign_up(), await auth.sign_up()
        assert (await auth.authenticate(a.token, a.org_id)).organization_id == a.org_id
        await expect_error(
            auth.authenticate(a.token, b.org_id), "organization_not_found", grpc.StatusCode.NOT_FOUND
        )
        await expect_error(auth.authenticate(a.token, "not-a-uuid"), "organization_not_found")


async def test_concurrent_authentications_of_one_sign_in_all_succeed(auth: AuthApi) -> None:
    account = await auth.sign_up()
    auth.clock.advance(timedelta(days=2))
    principals = await asyncio.gather(*(auth.authenticate(account.token) for _ in range(10)))
    assert {p.user_id for p in principals} == {account.user_id}
