from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from joserfc import jwt
from joserfc.jwk import OctKey
from proliferate.devkit.pytest_plugin import session_log_path
from proliferate.kit.errors import ErrorKind, NotFound, RemoteError
from proliferate.kit.logs import bind_context, clear_context, configure_logging, get_logger
from proliferate.kit.principal import Principal, PrincipalKind
from proliferate.kit.rpc import (
    ERROR_CODE_KEY,
    GrpcServer,
    ServiceClient,
    ServiceCredentials,
    current_caller,
    current_principal,
)

SECRET = "rpc-test-secret-0123456789abcdefghijklmnop"
SERVICE = "test.v1.Probe"


class SessionNotFound(NotFound):
    code = "session_not_found"
    message = "session not found"


class ProbeServicer:
    async def Find(self, request: struct_pb2.Struct, context: Any) -> struct_pb2.Struct:
        if request["id"] == "missing":
            raise SessionNotFound(session_id="missing")
        if request["id"] == "crash":
            raise RuntimeError(f"database password {SECRET} leaked?")
        if request["id"] == "slow":
            await asyncio.sleep(2)
        get_logger("proliferate.test.probe").info("probe_found", id=request["id"])
        reply = struct_pb2.Struct()
        caller = current_caller()
        reply.update(
            {"caller": caller.service, "user": current_principal().user_id if caller.principal else ""}
        )
        return reply


def add_probe(servicer: ProbeServicer, server: grpc.aio.Server) -> None:
    handler = grpc.unary_unary_rpc_method_handler(
        servicer.Find,
        request_deserializer=struct_pb2.Struct.FromString,
        response_serializer=lambda m: m.SerializeToString(),
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Find": handler}),))


@pytest.fixture
async def server() -> AsyncIterator[GrpcServer]:
    srv = GrpcServer("auth", ServiceCredentials(SECRET), port=0, grace_seconds=0.5)
    srv.register(SERVICE, add_probe, ProbeServicer(), {"Find": {"gateway"}})
    await srv.start()
    yield srv
    await srv.stop()


def find_method(channel: grpc.aio.Channel) -> Any:
    return channel.unary_unary(
        f"/{SERVICE}/Find",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=struct_pb2.Struct.FromString,
    )


def request(id_: str) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update({"id": id_})
    return message


async def raw_call(
    server: GrpcServer, id_: str, metadata: tuple[tuple[str, str], ...] = ()
) -> grpc.aio.AioRpcError:
    async with grpc.aio.insecure_channel(server.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await find_method(channel)(request(id_), metadata=metadata, timeout=5)
    return info.value


def client(server: GrpcServer, caller: str = "gateway", **kwargs: Any) -> ServiceClient:
    return ServiceClient(caller, "auth", server.address, ServiceCredentials(SECRET), **kwargs)


class TestServiceCredential:
    async def test_call_without_credential_is_unauthenticated(self, server: GrpcServer) -> None:
        error = await raw_call(server, "x")
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED

    async def test_credential_for_another_service_is_unauthenticated(self, server: GrpcServer) -> None:
        token = ServiceCredentials(SECRET).mint("gateway", "billing")
        error = await raw_call(server, "x", (("authorization", f"Bearer {token}"),))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED

    async def test_credential_signed_with_another_secret_is_unauthenticated(self, server: GrpcServer) -> None:
        token = ServiceCredentials("another-secret-0123456789abcdefghijklmn").mint("gateway", "auth")
        error = await raw_call(server, "x", (("authorization", f"Bearer {token}"),))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED

    async def test_expired_credential_is_unauthenticated(self, server: GrpcServer) -> None:
        key = OctKey.import_key(SECRET.encode(), {"kid": ServiceCredentials(SECRET)._signing.kid})
        now = int(time.time())
        token = jwt.encode(
            {"alg": "HS256", "kid": key.kid},
            {"iss": "gateway", "aud": "auth", "iat": now - 600, "exp": now - 300},
            key,
        )
        error = await raw_call(server, "x", (("authorization", f"Bearer {token}"),))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED

    async def test_caller_outside_the_allow_list_is_permission_denied(self, server: GrpcServer) -> None:
        with pytest.raises(RemoteError) as info:
            await client(server, caller="sandbox").call(find_method(client(server).channel), request("x"))
        assert info.value.kind is ErrorKind.PERMISSION_DENIED

    async def test_allowed_caller_and_forwarded_principal_reach_the_method(self, server: GrpcServer) -> None:
        probe = client(server)
        principal = Principal(
            kind=PrincipalKind.USER, user_id="user-1", organization_id="org-1", role="owner"
        )
        reply = await probe.call(find_method(probe.channel), request("x"), principal=principal)
        assert reply["caller"] == "gateway"
        assert reply["user"] == "user-1"
        await probe.close()

    async def test_previous_secret_still_verifies_during_rotation(self) -> None:
        new_secret = "rotated-secret-0123456789abcdefghijklmnop"
        srv = GrpcServer(
            "auth", ServiceCredentials(new_secret, previous_secret=SECRET), port=0, grace_seconds=0.1
        )
        srv.register(SERVICE, add_probe, ProbeServicer(), {"Find": {"gateway"}})
        await srv.start()
        try:
            old = ServiceClient("gateway", "auth", srv.address, ServiceCredentials(SECRET))
            reply = await old.call(find_method(old.channel), request("x"))
            assert reply["caller"] == "gateway"
            await old.close()
        finally:
            await srv.stop()


class TestErrorMapping:
    async def test_domain_not_found_arrives_as_not_found_with_its_code(self, server: GrpcServer) -> None:
        probe = client(server)
        with pytest.raises(RemoteError) as info:
            await probe.call(find_method(probe.channel), request("missing"))
        assert info.value.kind is ErrorKind.NOT_FOUND
        assert info.value.code == "session_not_found"
        assert info.value.details == {"session_id": "missing"}
        await probe.close()

    async def test_error_code_is_in_trailing_metadata_and_error_info(self, server: GrpcServer) -> None:
        token = ServiceCredentials(SECRET).mint("gateway", "auth")
        error = await raw_call(server, "missing", (("authorization", f"Bearer {token}"),))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        trailing = dict(error.trailing_metadata() or ())
        assert trailing[ERROR_CODE_KEY] == "session_not_found"
        rich = status_pb2.Status.FromString(trailing["grpc-status-details-bin"])
        info = error_details_pb2.ErrorInfo()
        rich.details[0].Unpack(info)
        assert info.reason == "session_not_found"

    async def test_unexpected_error_is_internal_without_its_message(self, server: GrpcServer) -> None:
        probe = client(server)
        with pytest.raises(RemoteError) as info:
            await probe.call(find_method(probe.channel), request("crash"))
        assert info.value.kind is ErrorKind.INTERNAL
        assert info.value.code == "internal_error"
        assert SECRET not in info.value.message
        await probe.close()

    async def test_default_deadline_applies(self, server: GrpcServer) -> None:
        probe = client(server, default_timeout=0.3)
        with pytest.raises(RemoteError) as info:
            await probe.call(find_method(probe.channel), request("slow"))
        assert info.value.kind is ErrorKind.DEADLINE_EXCEEDED
        assert info.value.code == "dependency_timeout"
        await probe.close()

    async def test_unreachable_service_is_unavailable(self) -> None:
        probe = ServiceClient("gateway", "auth", "127.0.0.1:1", ServiceCredentials(SECRET), default_timeout=1)
        with pytest.raises(RemoteError) as info:
            await probe.call(find_method(probe.channel), request("x"))
        assert info.value.kind is ErrorKind.UNAVAILABLE
        assert info.value.code == "auth_unavailable"
        assert await probe.health(timeout=0.5) == "UNREACHABLE"
        await probe.close()


class TestHealth:
    async def test_health_is_open_and_follows_serving_state(self, server: GrpcServer) -> None:
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            await server.set_serving(False)
            reply = await stub.Check(health_pb2.HealthCheckRequest(service="auth"), timeout=2)
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


class TestRequestId:
    async def test_the_callers_request_id_is_in_the_servers_log_lines(self, server: GrpcServer) -> None:
        stream = io.StringIO()
        configure_logging("probe", "debug", stream=stream)
        probe = client(server)
        try:
            bind_context(request_id="req-7f3a.1")
            await probe.call(find_method(probe.channel), request("with-id"))
            bind_context(request_id="not a request id; DROP")
            await probe.call(find_method(probe.channel), request("bad-id"))
        finally:
            clear_context(["request_id"])
            await probe.close()
            configure_logging("test", "debug", stream=open(session_log_path(), "a", buffering=1))  # noqa: SIM115
        found = {
            line["id"]: line
            for line in map(json.loads, stream.getvalue().splitlines())
            if line.get("event") == "probe_found"
        }
        assert found["with-id"]["request_id"] == "req-7f3a.1"
        assert "request_id" not in found["bad-id"]
