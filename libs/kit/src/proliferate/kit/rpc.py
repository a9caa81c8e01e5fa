"""gRPC between services: credentials, the server with its one interceptor, and clients.

Every call carries a service credential: an HS256 JWT (`SERVICE_AUTH_SECRET`) naming the
calling service (`iss`), the called service (`aud`), a 5-minute expiry and, optionally,
the end-user `Principal` the gateway authenticated. The server refuses a missing or
invalid credential, or one minted for another service, with `UNAUTHENTICATED`, and a
caller outside the method's allow-list with `PERMISSION_DENIED`. Health and reflection
stay open for probes and tooling.

Domain errors leave the server through one table (`kit.errors.WIRE`) with their stable
code in the trailing metadata (`proliferate-error-code`) and in a `google.rpc.ErrorInfo`;
clients turn any gRPC error back into a `RemoteError` with the same kind and code.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import grpc
import grpc.aio
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey
from proliferate.kit import tracing
from proliferate.kit.errors import (
    DomainError,
    ErrorKind,
    PermissionDenied,
    RemoteError,
    Unauthenticated,
    grpc_status,
    kind_from_grpc,
)
from proliferate.kit.ids import REQUEST_ID_HEADER, valid_request_id
from proliferate.kit.logs import bind_context, clear_context, context_value, get_logger, redact
from proliferate.kit.principal import Principal

log = get_logger("proliferate.kit.rpc")

ERROR_CODE_KEY = "proliferate-error-code"
ERROR_DETAILS_KEY = "proliferate-error-details"
ERROR_DOMAIN = "proliferate.dev"
TOKEN_TTL_SECONDS = 300
DEFAULT_DEADLINE_SECONDS = 10.0
_OPEN_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)


# --- credentials -------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """Who is calling: the verified calling service and the principal it forwarded."""

    service: str
    principal: Principal | None


class ServiceCredentials:
    """Mints and verifies service-to-service tokens; the previous secret verifies during rotation."""

    def __init__(self, secret: str, previous_secret: str | None = None) -> None:
        self._signing = _oct_key(secret)
        self._verifying = {k.kid: k for k in (_oct_key(s) for s in (secret, previous_secret) if s)}
        self._cache: dict[tuple[str, str, str], tuple[float, str]] = {}

    def mint(self, issuer: str, audience: str, principal: Principal | None = None) -> str:
        claim = json.dumps(principal.to_claim(), sort_keys=True) if principal is not None else ""
        key = (issuer, audience, claim)
        now = time.time()
        cached = self._cache.get(key)
        if cached is not None and cached[0] - now > TOKEN_TTL_SECONDS / 2:
            return cached[1]
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "iat": int(now),
            "exp": int(now) + TOKEN_TTL_SECONDS,
        }
        if principal is not None:
            claims["principal"] = principal.to_claim()
        token = jwt.encode(
            {"alg": "HS256", "kid": self._signing.kid}, claims, self._signing, algorithms=["HS256"]
        )
        if len(self._cache) > 4096:
            self._cache.clear()
        self._cache[key] = (now + TOKEN_TTL_SECONDS, token)
        return token

    def verify(self, token: str, audience: str) -> Caller:
        try:
            decoded = jwt.decode(token, self._pick_key, algorithms=["HS256"])
        except (JoseError, ValueError) as exc:
            raise Unauthenticated("invalid service credential") from exc
        claims = decoded.claims
        now = time.time()
        if claims.get("aud") != audience:
            raise Unauthenticated("service credential is for another service")
        exp = claims.get("exp")
        iat = claims.get("iat", 0)
        if not isinstance(exp, int) or exp < now or exp - int(iat) > TOKEN_TTL_SECONDS + 5:
            raise Unauthenticated("service credential expired")
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise Unauthenticated("service credential names no caller")
        principal = Principal.from_claim(claims["principal"]) if claims.get("principal") else None
        return Caller(service=issuer, principal=principal)

    def _pick_key(self, obj: Any) -> OctKey:
        kid = obj.headers().get("kid") if hasattr(obj, "headers") else None
        key = self._verifying.get(kid) if kid else None
        if key is None:
            raise Unauthenticated("service credential signed with an unknown key")
        return key


def _oct_key(secret: str) -> OctKey:
    kid = hashlib.sha256(secret.encode()).hexdigest()[:12]
    return OctKey.import_key(secret.encode(), {"kid": kid})


# --- server ------------------------------------------------------------------------------

_caller: ContextVar[Caller | None] = ContextVar("proliferate_rpc_caller", default=None)


def current_caller() -> Caller:
    caller = _caller.get()
    if caller is None:
        raise Unauthenticated("no verified caller in this context")
    return caller


def current_principal() -> Principal:
    principal = current_caller().principal
    if principal is None:
        raise Unauthenticated("this method needs a forwarded principal")
    return principal


# method name ("CreateSession") or "*" -> services allowed to call it
AllowList = Mapping[str, Collection[str]]


class _Status(NamedTuple):
    code: grpc.StatusCode
    details: str
    trailing_metadata: tuple[tuple[str, str | bytes], ...]


def status_for(error: DomainError) -> _Status:
    code = grpc_status(error.kind)
    details_json = json.dumps(error.details, default=str, sort_keys=True) if error.details else ""
    info = error_details_pb2.ErrorInfo(
        reason=error.code, domain=ERROR_DOMAIN, metadata={k: str(v) for k, v in error.details.items()}
    )
    packed = any_pb2.Any()
    packed.Pack(info)
    rich = status_pb2.Status(code=code.value[0], message=error.message, details=[packed])
    trailing: list[tuple[str, str | bytes]] = [(ERROR_CODE_KEY, error.code)]
    if details_json:
        trailing.append((ERROR_DETAILS_KEY, details_json))
    trailing.append(("grpc-status-details-bin", rich.SerializeToString()))
    return _Status(code, error.message, tuple(trailing))


class _ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Authenticates, authorizes, traces and maps errors for every method of the server."""

    def __init__(self, server: GrpcServer) -> None:
        self.server = server

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        method: str = details.method  # "/pkg.Service/Method"
        service_name = method.split("/")[1] if method.count("/") == 2 else ""
        if service_name in _OPEN_SERVICES:
            return handler
        return _wrap_handler(handler, self.server, method)


def _wrap_handler(handler: grpc.RpcMethodHandler, server: GrpcServer, method: str) -> grpc.RpcMethodHandler:
    if handler.unary_unary:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with server.guard(method, context):
                return await inner_uu(request, context)

        return grpc.unary_unary_rpc_method_handler(
            unary_unary, handler.request_deserializer, handler.response_serializer
        )
    if handler.unary_stream:
        inner_us = handler.unary_stream

        async def unary_stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            async with server.guard(method, context):
                async for item in inner_us(request, context):
                    yield item

        return grpc.unary_stream_rpc_method_handler(
            unary_stream, handler.request_deserializer, handler.response_serializer
        )
    if handler.stream_unary:
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            async with server.guard(method, context):
                return await inner_su(requests, context)

        return grpc.stream_unary_rpc_method_handler(
            stream_unary, handler.request_deserializer, handler.response_serializer
        )
    inner_ss = handler.stream_stream

    async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        async with server.guard(method, context):
            async for item in inner_ss(requests, context):
                yield item

    return grpc.stream_stream_rpc_method_handler(
        stream_stream, handler.request_deserializer, handler.response_serializer
    )


class GrpcServer:
    """One grpc.aio server per service process, with health checking and reflection."""

    def __init__(
        self,
        service: str,
        credentials: ServiceCredentials,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        grace_seconds: float = 10.0,
    ) -> None:
        self.service = service
        self.credentials = credentials
        self.grace_seconds = grace_seconds
        self._policies: dict[str, Collection[str]] = {}
        self._service_names: list[str] = []
        self.server = grpc.aio.server(
            interceptors=[_ServerInterceptor(self)],
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.port: int = self.server.add_insecure_port(f"{host}:{port}")
        self.host = host

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def register(
        self,
        full_service_name: str,
        add_to_server: Callable[[Any, grpc.aio.Server], None],
        servicer: Any,
        allowed_callers: AllowList,
    ) -> None:
        """Serve `servicer`; `allowed_callers` maps method names (or "*") to calling services."""
        add_to_server(servicer, self.server)
        self._service_names.append(full_service_name)
        for name, callers in allowed_callers.items():
            self._policies[f"/{full_service_name}/{name}"] = frozenset(callers)
        self._policies.setdefault(f"/{full_service_name}/*", frozenset(allowed_callers.get("*", ())))

    def allowed(self, method: str) -> Collection[str]:
        if method in self._policies:
            return self._policies[method]
        service_name = method.split("/")[1]
        return self._policies.get(f"/{service_name}/*", frozenset())

    @contextlib.asynccontextmanager
    async def guard(self, method: str, context: grpc.aio.ServicerContext) -> AsyncIterator[None]:
        metadata = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        with tracing.span_from(
            metadata, method.lstrip("/"), kind=tracing.SpanKind.SERVER, attributes={"rpc.system": "grpc"}
        ):
            token = _caller.set(None)
            try:
                caller = self._authenticate(method, metadata)
                _caller.set(caller)
                bind_context(rpc_method=method, caller=caller.service)
                request_id = metadata.get(REQUEST_ID_HEADER, "")
                if valid_request_id(request_id):
                    bind_context(request_id=request_id)
                yield
            except DomainError as error:
                await context.abort_with_status(status_for(error))
            except (grpc.aio.AbortError, grpc.aio.UsageError):
                raise
            except Exception:
                log.exception("rpc_internal_error", method=method)
                await context.abort(
                    grpc.StatusCode.INTERNAL, "internal error", ((ERROR_CODE_KEY, "internal_error"),)
                )
            finally:
                _caller.reset(token)
                clear_context(["rpc_method", "caller", "request_id"])

    def _authenticate(self, method: str, metadata: Mapping[str, str]) -> Caller:
        header = metadata.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise Unauthenticated("missing service credential", code="unauthenticated")
        caller = self.credentials.verify(header[7:].strip(), audience=self.service)
        if caller.service not in self.allowed(method):
            raise PermissionDenied(f"{caller.service} may not call {method}", code="forbidden")
        return caller

    async def start(self) -> None:
        names = [*self._service_names, health.SERVICE_NAME, reflection.SERVICE_NAME]
        reflection.enable_server_reflection(names, self.server)
        await self.server.start()
        await self.set_serving(True)

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", self.service, *self._service_names):
            await self.health.set(name, status)

    async def stop(self) -> None:
        await self.set_serving(False)
        await self.server.stop(self.grace_seconds)


# --- clients -----------------------------------------------------------------------------

R = TypeVar("R")


@contextlib.contextmanager
def translate_errors(target: str) -> Iterator[None]:
    """The one place a gRPC error from another service becomes a `RemoteError`."""
    try:
        yield
    except grpc.aio.AioRpcError as exc:
        raise remote_error(exc, target) from None


def remote_error(exc: grpc.aio.AioRpcError, target: str) -> RemoteError:
    trailing = {k: v for k, v in (exc.trailing_metadata() or ()) if isinstance(v, str)}
    kind = kind_from_grpc(exc.code())
    code = trailing.get(ERROR_CODE_KEY) or _default_code(kind, target)
    details: dict[str, Any] = {}
    if trailing.get(ERROR_DETAILS_KEY):
        with contextlib.suppress(ValueError):
            details = json.loads(trailing[ERROR_DETAILS_KEY])
    message = exc.details() or code
    if kind is ErrorKind.UNAVAILABLE and ERROR_CODE_KEY not in trailing:
        message = f"{target} is unavailable"
    return RemoteError(kind, code, redact(message), details)


def _default_code(kind: ErrorKind, target: str) -> str:
    if kind is ErrorKind.UNAVAILABLE:
        return f"{target}_unavailable"
    if kind is ErrorKind.DEADLINE_EXCEEDED:
        return "dependency_timeout"
    if kind is ErrorKind.INTERNAL:
        return "internal_error"
    return kind.value


class ServiceClient:
    """Calls one target service: credential and trace context attached, deadline applied."""

    def __init__(
        self,
        caller: str,
        target: str,
        address: str,
        credentials: ServiceCredentials,
        *,
        default_timeout: float = DEFAULT_DEADLINE_SECONDS,
    ) -> None:
        self.caller = caller
        self.target = target
        self.address = address
        self.credentials = credentials
        self.default_timeout = default_timeout
        self.channel = grpc.aio.insecure_channel(
            address,
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
                ("grpc.keepalive_time_ms", 30_000),
            ],
        )

    def metadata(self, principal: Principal | None = None) -> tuple[tuple[str, str], ...]:
        token = self.credentials.mint(self.caller, self.target, principal)
        pairs = [("authorization", f"Bearer {token}")]
        pairs.extend(tracing.current_trace_headers().items())
        request_id = context_value("request_id")
        if isinstance(request_id, str) and valid_request_id(request_id):
            pairs.append((REQUEST_ID_HEADER, request_id))
        return tuple(pairs)

    def stub(self, stub_type: Callable[[grpc.aio.Channel], R]) -> R:
        return stub_type(self.channel)

    async def call(
        self,
        method: Callable[..., Any],
        request: Any,
        *,
        timeout: float | None = None,
        principal: Principal | None = None,
    ) -> Any:
        name = getattr(method, "_method", b"").decode() if hasattr(method, "_method") else self.target
        with (
            tracing.span(name.lstrip("/") or self.target, kind=tracing.SpanKind.CLIENT),
            translate_errors(self.target),
        ):
            return await method(
                request, timeout=timeout or self.default_timeout, metadata=self.metadata(principal)
            )

    async def health(self, timeout: float = 1.0) -> str:
        """The target's gRPC health status name (`SERVING`, ...) or `UNREACHABLE`."""
        stub = health_pb2_grpc.HealthStub(self.channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout)
        except grpc.aio.AioRpcError:
            return "UNREACHABLE"
        return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))

    async def close(self) -> None:
        await self.channel.close()


class ServiceClients:
    """The clients of one calling service, one channel per target, made on first use."""

    def __init__(
        self,
        caller: str,
        credentials: ServiceCredentials,
        addresses: Mapping[str, str],
        *,
        default_timeout: float = DEFAULT_DEADLINE_SECONDS,
    ) -> None:
        self.caller = caller
        self.credentials = credentials
        self.addresses = dict(addresses)
        self.default_timeout = default_timeout
        self._clients: dict[str, ServiceClient] = {}

    def __call__(self, target: str) -> ServiceClient:
        client = self._clients.get(target)
        if client is None:
            client = ServiceClient(
                self.caller,
                target,
                self.addresses[target],
                self.credentials,
                default_timeout=self.default_timeout,
            )
            self._clients[target] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
