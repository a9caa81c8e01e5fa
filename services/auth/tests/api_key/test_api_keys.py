"""API keys (auth.md §5.9; §10 lines 27-28)."""

from __future__ import annotations

from datetime import timedelta

import grpc
from proliferate.devkit.pytest_plugin import register_canary, session_log_path
from proliferate.kit.principal import PrincipalKind
from proliferate.protos.auth.v1 import auth_pb2 as pb

from ..conftest import Account, AuthApi, expect_error  # noqa: TID252 - the shared test helpers


async def create_key(
    auth: AuthApi, account: Account, name: str = "ci", days: int | None = None, org: str = ""
) -> pb.CreatedApiKey:
    request = pb.CreateApiKeyRequest(name=name)
    if days is not None:
        request.expires_in_days = days
    created = await auth.call("CreateApiKey", request, await auth.authenticate(account.token, org))
    register_canary(created.key)
    return created


class TestApiKeys:
    async def test_the_key_is_shown_once_stored_hashed_and_acts_in_its_org(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        created = await create_key(auth, owner)
        assert created.key.startswith("plf_") and created.api_key.start == created.key[:8]
        listed = await auth.call("ListApiKeys", principal=await auth.as_member(owner))
        assert [k.start for k in listed.api_keys] == [created.key[:8]]
        assert created.key not in str(listed)
        row = (await auth.rows("SELECT prefix, secret_hash, start FROM api_keys"))[0]
        assert row.prefix in created.key and created.key.split("_", 2)[2].encode() not in bytes(
            row.secret_hash
        )
        principal = await auth.authenticate(created.key)
        assert (principal.kind, principal.organization_id, principal.user_id, principal.role) == (
            PrincipalKind.API_KEY,
            owner.org_id,
            owner.user_id,
            "owner",
        )
        assert "proliferate.auth.api_key.created" in await auth.outbox_subjects()
        assert created.key not in session_log_path().read_text()

    async def test_x_org_id_of_another_org_is_403(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        other = await auth.create_org(owner, "Other")
        created = await create_key(auth, owner, org=owner.org_id)
        assert (await auth.authenticate(created.key, owner.org_id)).organization_id == owner.org_id
        await expect_error(
            auth.authenticate(created.key, other), "forbidden", grpc.StatusCode.PERMISSION_DENIED
        )

    async def test_the_twenty_sixth_active_key_is_409(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        for i in range(25):
            await create_key(auth, owner, f"k{i}")
        await expect_error(
            create_key(auth, owner, "k25"), "api_key_limit", grpc.StatusCode.FAILED_PRECONDITION
        )

    async def test_a_revoked_key_is_unauthenticated(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        created = await create_key(auth, owner)
        revoked = await auth.call(
            "RevokeApiKey", pb.ApiKeyRef(api_key_id=created.api_key.id), await auth.as_member(owner)
        )
        assert revoked.HasField("revoked_at")
        await expect_error(auth.authenticate(created.key), "unauthenticated", grpc.StatusCode.UNAUTHENTICATED)
        assert "proliferate.auth.api_key.revoked" in await auth.outbox_subjects()

    async def test_an_expired_key_is_unauthenticated(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        created = await create_key(auth, owner, days=1)
        auth.clock.advance(timedelta(days=1, seconds=1))
        await expect_error(auth.authenticate(created.key), "unauthenticated")

    async def test_the_key_of_a_user_removed_from_its_org_is_unauthenticated(
        self, auth_worker: AuthApi
    ) -> None:
        auth = auth_worker
        owner, member = await auth.sign_up(), await auth.sign_up()
        org_id = await auth.create_org(owner, "Team")
        member_id = await auth.add_member(owner, org_id, member)
        created = await create_key(auth, member, org=org_id)
        assert (await auth.authenticate(created.key)).role == "member"
        await auth.call(
            "RemoveMember",
            pb.MemberRef(organization_id=org_id, member_id=member_id),
            await auth.authenticate(owner.token, org_id),
        )
        await expect_error(auth.authenticate(created.key), "unauthenticated")

    async def test_a_tampered_or_malformed_key_is_unauthenticated(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        created = await create_key(auth, owner)
        tampered = created.key[:-2] + ("AA" if not created.key.endswith("AA") else "BB")
        for bad in (tampered, "plf_short", "plf_", created.key.replace("plf_", "plx_")):
            await expect_error(auth.authenticate(bad), "unauthenticated")

    async def test_another_org_member_revoking_a_key_gets_not_found_and_a_member_cannot_revoke_anothers(
        self, auth_worker: AuthApi
    ) -> None:
        auth = auth_worker
        owner, member, stranger = await auth.sign_up(), await auth.sign_up(), await auth.sign_up()
        org_id = await auth.create_org(owner, "Team")
        await auth.add_member(owner, org_id, member)
        owners_key = await create_key(auth, owner, org=org_id)
        ref = pb.ApiKeyRef(api_key_id=owners_key.api_key.id)
        await expect_error(
            auth.call("RevokeApiKey", ref, await auth.as_member(stranger)), "api_key_not_found"
        )
        await expect_error(
            auth.call("RevokeApiKey", ref, await auth.authenticate(member.token, org_id)), "forbidden"
        )
        members_key = await create_key(auth, member, org=org_id)
        # An owner revokes any key of the org and sees them all.
        await auth.call(
            "RevokeApiKey",
            pb.ApiKeyRef(api_key_id=members_key.api_key.id),
            await auth.authenticate(owner.token, org_id),
        )
        listed = await auth.call("ListApiKeys", principal=await auth.authenticate(owner.token, org_id))
        assert len(listed.api_keys) == 2

    async def test_a_key_cannot_mint_keys(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        created = await create_key(auth, owner)
        await expect_error(
            auth.call("CreateApiKey", pb.CreateApiKeyRequest(name="x"), await auth.authenticate(created.key)),
            "forbidden",
        )

    async def test_bad_names_and_expiries_are_invalid(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        await expect_error(create_key(auth, owner, ""), "invalid_argument")
        await expect_error(create_key(auth, owner, "x" * 65), "invalid_argument")
        await expect_error(create_key(auth, owner, days=366), "invalid_argument")
