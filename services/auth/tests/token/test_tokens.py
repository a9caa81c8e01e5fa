"""Signed tokens and service credentials (auth.md §4.4; §10 lines 31-33)."""

from __future__ import annotations

import grpc
import grpc.aio
import pytest
from google.protobuf.empty_pb2 import Empty
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OKPKey
from proliferate.auth.token.signing import SigningKeys
from proliferate.kit.errors import RemoteError
from proliferate.protos.auth.v1 import auth_pb2 as pb
from proliferate.protos.auth.v1 import auth_pb2_grpc

from ..conftest import SIGNING_KEYS, AuthApi, StartAuth, expect_error, service_client  # noqa: TID252 - the shared test helpers


async def jwks(auth: AuthApi) -> KeySet:
    reply = await auth.call("GetJwks")
    return KeySet(
        [OKPKey.import_key({"kty": k.kty, "crv": k.crv, "x": k.x, "kid": k.kid}) for k in reply.keys]
    )


def verify(token: str, keys: KeySet) -> dict[str, object]:
    return dict(jwt.decode(token, keys, algorithms=["Ed25519"]).claims)


class TestAccessToken:
    async def test_verifies_with_the_jwks_and_carries_the_principal(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        principal = await auth.as_member(owner)
        token = await auth.call("IssueAccessToken", principal=principal)
        claims = verify(token.token, await jwks(auth))
        assert (
            claims["iss"] == "proliferate-auth" and claims["aud"] == "gateway" and claims["typ"] == "access"
        )
        assert (claims["sub"], claims["org"], claims["role"], claims["cid"]) == (
            owner.user_id,
            owner.org_id,
            "owner",
            principal.credential_id,
        )
        assert claims["exp"] - claims["iat"] == 3600 and claims["jti"] == token.jti

    async def test_an_api_key_gets_no_access_token(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        key = await auth.call("CreateApiKey", pb.CreateApiKeyRequest(name="k"), await auth.as_member(owner))
        await expect_error(
            auth.call("IssueAccessToken", principal=await auth.authenticate(key.key)), "forbidden"
        )

    async def test_after_rotation_old_tokens_verify_until_their_key_is_removed(
        self, start_auth: StartAuth
    ) -> None:
        old = await start_auth()
        owner = await old.sign_up()
        old_token = (await old.call("IssueAccessToken", principal=await old.as_member(owner))).token
        new_key = SigningKeys.generate_setting("test-key-2")
        rotated = await start_auth(AUTH_SIGNING_KEYS=new_key[:-1] + ", " + SIGNING_KEYS[1:])
        keys = await jwks(rotated)
        assert verify(old_token, keys)["sub"] == owner.user_id
        new_token = (await rotated.call("IssueAccessToken", principal=await rotated.as_member(owner))).token
        assert jwt.decode(new_token, keys, algorithms=["Ed25519"]).header["kid"] == "test-key-2"
        retired = await start_auth(AUTH_SIGNING_KEYS=new_key)
        with pytest.raises((JoseError, ValueError)):
            verify(old_token, await jwks(retired))
        assert verify(new_token, await jwks(retired))["sub"] == owner.user_id


class TestSandboxToken:
    async def test_names_the_session_and_each_boot_gets_a_new_jti(self, auth: AuthApi) -> None:
        session_id, org_id = "01900000-0000-7000-8000-000000000001", "01900000-0000-7000-8000-000000000002"
        request = pb.IssueSandboxTokenRequest(session_id=session_id, organization_id=org_id, ttl_seconds=3600)
        first, second = (
            await auth.call("IssueSandboxToken", request),
            await auth.call("IssueSandboxToken", request),
        )
        keys = await jwks(auth)
        claims = verify(first.token, keys)
        assert (claims["typ"], claims["sid"], claims["org"], claims["exp"] - claims["iat"]) == (
            "sandbox",
            session_id,
            org_id,
            3600,
        )
        assert first.jti != second.jti and verify(second.token, keys)["jti"] == second.jti

    async def test_at_most_seven_days(self, auth: AuthApi) -> None:
        request = pb.IssueSandboxTokenRequest(
            session_id="01900000-0000-7000-8000-000000000001",
            organization_id="01900000-0000-7000-8000-000000000002",
            ttl_seconds=8 * 86400,
        )
        await expect_error(auth.call("IssueSandboxToken", request), "invalid_argument")


class TestServiceCredentials:
    async def test_a_call_without_a_service_credential_is_unauthenticated(self, auth: AuthApi) -> None:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{auth.grpc_port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await auth_pb2_grpc.AuthServiceStub(channel).GetJwks(Empty())
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED

    @pytest.mark.parametrize(
        ("caller", "method", "request_", "allowed"),
        [
            ("actions", "IssueSandboxToken", pb.IssueSandboxTokenRequest(), False),
            ("sandbox", "Authenticate", pb.AuthenticateRequest(credential="x"), False),
            ("automations", "GetMe", Empty(), False),
            ("actions", "GetJwks", Empty(), True),
            ("integrations", "GetMembership", pb.GetMembershipRequest(), True),
        ],
    )
    async def test_the_allow_list_decides_who_calls_what(
        self, auth: AuthApi, caller: str, method: str, request_: object, allowed: bool
    ) -> None:
        client = service_client(auth.grpc_port, caller)
        try:
            call = client.call(getattr(auth_pb2_grpc.AuthServiceStub(client.channel), method), request_)
            if allowed:
                try:
                    await call
                except RemoteError as exc:
                    assert exc.code not in ("forbidden", "unauthenticated")
            else:
                error = await expect_error(call, "forbidden", grpc.StatusCode.PERMISSION_DENIED)
                assert caller in error.message
        finally:
            await client.close()
