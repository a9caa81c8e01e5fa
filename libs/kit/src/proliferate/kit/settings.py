"""Settings: the process environment decoded into a typed `msgspec.Struct`.

Every service declares one `Settings` struct (subclass of `ServiceSettings`) whose field
names are the lower-case environment variable names. A missing or invalid variable stops
the process with one readable line naming it, never a traceback.

Fields whose value is a secret are declared with the `Secret` annotation; their values are
registered with the log redactor as soon as they are loaded.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from typing import Annotated, Any, NoReturn, TypeVar

import msgspec
from proliferate.kit.logs import register_secret
from proliferate.kit.topology import default_grpc_address

SECRET_META = {"secret": True}

# A string whose value must never be logged; at least 16 characters.
Secret = Annotated[str, msgspec.Meta(min_length=16, extra=SECRET_META)]
# A secret that may be shorter (third-party credentials we do not choose the shape of).
AnySecret = Annotated[str, msgspec.Meta(extra=SECRET_META)]
PostgresUrl = Annotated[str, msgspec.Meta(pattern=r"^postgres(ql)?(\+psycopg)?://.+")]
NatsUrl = Annotated[str, msgspec.Meta(pattern=r"^(nats|tls)://[^,]+(,(nats|tls)://[^,]+)*$")]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
# A port to listen on; 0 picks any free port (tests).
ListenPort = Annotated[int, msgspec.Meta(ge=0, le=65535)]
LogLevel = Annotated[str, msgspec.Meta(pattern=r"^(?i:debug|info|warning|error)$")]
Environment = Annotated[str, msgspec.Meta(pattern=r"^(dev|test|production)$")]


class SettingsError(Exception):
    """One invalid or missing setting; `str()` is the one line shown to the operator."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"setting {variable} {problem}")
        self.variable = variable


class ServiceSettings(msgspec.Struct, kw_only=True, frozen=True, rename="upper"):
    """What every service reads from its environment."""

    database_url: PostgresUrl
    nats_url: NatsUrl
    service_auth_secret: Annotated[str, msgspec.Meta(min_length=32, extra=SECRET_META)]
    # Accepted while secrets rotate: tokens signed with it still verify.
    service_auth_previous_secret: Annotated[str, msgspec.Meta(min_length=32, extra=SECRET_META)] | None = None
    proliferate_env: Environment = "production"
    log_level: LogLevel = "info"
    grpc_host: str = "127.0.0.1"
    grpc_port: ListenPort | None = None
    grpc_grace_seconds: Annotated[float, msgspec.Meta(ge=0, le=300)] = 10.0
    gateway_grpc_address: str = default_grpc_address("gateway")
    sandbox_grpc_address: str = default_grpc_address("sandbox")
    automations_grpc_address: str = default_grpc_address("automations")
    triggers_grpc_address: str = default_grpc_address("triggers")
    actions_grpc_address: str = default_grpc_address("actions")
    llm_proxy_grpc_address: str = default_grpc_address("llm_proxy")
    billing_grpc_address: str = default_grpc_address("billing")
    auth_grpc_address: str = default_grpc_address("auth")
    repos_grpc_address: str = default_grpc_address("repos")
    integrations_grpc_address: str = default_grpc_address("integrations")
    database_pool_size: Annotated[int, msgspec.Meta(ge=1, le=200)] = 10
    outbox_batch_size: Annotated[int, msgspec.Meta(ge=1, le=5000)] = 500
    outbox_poll_seconds: Annotated[float, msgspec.Meta(gt=0, le=60)] = 1.0
    otel_exporter_otlp_endpoint: str | None = None
    # How long an idle client connection stays open. Longer than the idle timeout of clients
    # and load balancers (60 s is common), so the server never closes a connection just as a
    # client sends its next request on it (the client would see the request fail).
    http_keepalive_seconds: Annotated[int, msgspec.Meta(ge=1, le=3600)] = 75

    def grpc_address(self, service: str) -> str:
        value: str = getattr(self, f"{service}_grpc_address")
        return value


S = TypeVar("S", bound=msgspec.Struct)

_TYPE_WORDS = re.compile(r"Expected `([^`]+)`, got `([^`]+)`")


def load_settings(settings_type: type[S], environ: Mapping[str, str] | None = None) -> S:
    """Decode the environment into `settings_type`; raises `SettingsError` naming the variable."""
    env = dict(os.environ if environ is None else environ)
    fields = msgspec.structs.fields(settings_type)
    names = {f.encode_name for f in fields}
    # Empty values count as unset, so `FOO=` in a .env file does not hide a default.
    raw: dict[str, Any] = {k: v for k, v in env.items() if k in names and v != ""}
    try:
        settings = msgspec.convert(raw, settings_type, strict=False)
    except msgspec.ValidationError as exc:
        raise _settings_error(str(exc)) from None
    for field in fields:
        if _is_secret(field):
            value = getattr(settings, field.name)
            if isinstance(value, str):
                register_secret(value)
    return settings


def load_settings_or_exit(
    settings_type: type[S], service: str, environ: Mapping[str, str] | None = None
) -> S:
    try:
        return load_settings(settings_type, environ)
    except SettingsError as exc:
        exit_with_line(f"{service}: {exc}")


def exit_with_line(line: str) -> NoReturn:
    print(line, file=sys.stderr, flush=True)
    raise SystemExit(2)


def _settings_error(message: str) -> SettingsError:
    # msgspec says e.g. "Object missing required field `DATABASE_URL`" or
    # "Expected `int`, got `str` - at `$.GRPC_PORT`".
    missing = re.search(r"missing required field `([^`]+)`", message)
    if missing:
        return SettingsError(missing.group(1), "is missing")
    at = re.search(r"at `\$\.([A-Z0-9_]+)`", message)
    variable = at.group(1) if at else "?"
    problem = message.split(" - at ")[0]
    words = _TYPE_WORDS.search(problem)
    if words:
        problem = f"expected {words.group(1)}"
    return SettingsError(variable, f"is invalid: {problem[0].lower() + problem[1:]}")


def _is_secret(field: msgspec.structs.FieldInfo) -> bool:
    return _type_is_secret(field.type)


def _type_is_secret(tp: Any) -> bool:
    info = msgspec.inspect.type_info(tp)
    if isinstance(info, msgspec.inspect.UnionType):
        return any(_info_is_secret(t) for t in info.types)
    return _info_is_secret(info)


def _info_is_secret(info: msgspec.inspect.Type) -> bool:
    extra = getattr(info, "extra", None) or {}
    return bool(extra.get("secret"))
