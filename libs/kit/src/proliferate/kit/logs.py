"""Structured logs: one JSON object per line, with secrets redacted.

Every line carries `timestamp`, `level`, `service`, `event`, and — inside a traced
operation — `trace_id` and `span_id`. The standard library's loggers (uvicorn, grpc,
alembic, asyncio) are routed through the same processors, so every line of a process
has one shape.

Redaction happens last, after exceptions are rendered into text: a value registered with
`register_secret()` or matching a registered credential pattern never reaches the output,
even inside a traceback or an exception message. Keys that name credentials (`password`,
`token`, `authorization`, ...) are redacted whatever their value.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, TextIO

import structlog
from opentelemetry import trace

REDACTED = "[REDACTED]"
_MIN_SECRET_LENGTH = 6

SENSITIVE_KEYS = frozenset(
    {
        "password",
        "new_password",
        "token",
        "access_token",
        "refresh_token",
        "authorization",
        "cookie",
        "set-cookie",
        "secret",
        "api_key",
        "client_secret",
        "code_verifier",
        "private_key",
    }
)


class _SecretRegistry:
    """Values and patterns that must never be printed. Thread-safe; rebuilt on change."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._patterns: list[str] = []
        self._regex: re.Pattern[str] | None = None

    def add_value(self, value: str) -> None:
        if len(value) < _MIN_SECRET_LENGTH:
            return
        with self._lock:
            if value not in self._values:
                self._values.add(value)
                self._rebuild()

    def add_pattern(self, pattern: str) -> None:
        with self._lock:
            if pattern not in self._patterns:
                self._patterns.append(pattern)
                self._rebuild()

    def _rebuild(self) -> None:
        # Longest first so a secret containing another is removed whole.
        parts = [re.escape(v) for v in sorted(self._values, key=len, reverse=True)]
        parts.extend(f"(?:{p})" for p in self._patterns)
        self._regex = re.compile("|".join(parts)) if parts else None

    def redact(self, text: str) -> str:
        regex = self._regex
        return regex.sub(REDACTED, text) if regex is not None else text


_registry = _SecretRegistry()

# Credential shapes that are secret wherever they appear.
register_pattern = _registry.add_pattern
register_pattern(r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{16,}")
register_pattern(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


def register_secret(value: str) -> None:
    """Never print `value` again in any log line of this process."""
    _registry.add_value(value)


def redact(text: str) -> str:
    return _registry.redact(text)


def _redact_value(key: str | None, value: Any) -> Any:
    if key is not None and key.lower() in SENSITIVE_KEYS and value not in (None, ""):
        return REDACTED
    if isinstance(value, str):
        return _registry.redact(value)
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(None, v) for v in value]
    if isinstance(value, bytes | bytearray):
        return _registry.redact(bytes(value).decode("utf-8", "replace"))
    if isinstance(value, int | float | bool) or value is None:
        return value
    return _registry.redact(str(value))


def redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        event_dict[key] = _redact_value(key, event_dict[key])
    return event_dict


def _add_trace_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
    return event_dict


def _service_adder(service: str) -> structlog.types.Processor:
    def add(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    return add


def _shared_processors(service: str) -> list[structlog.types.Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        _service_adder(service),
        _add_trace_ids,
    ]


def _drop_noise(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event_dict.pop("color_message", None)  # uvicorn's ANSI copy of the message
    return event_dict


def _final_processors() -> list[structlog.types.Processor]:
    return [
        _drop_noise,
        structlog.processors.format_exc_info,
        redact_processor,
    ]


_configured_stream: TextIO | None = None


def configure_logging(service: str, level: str = "info", stream: TextIO | None = None) -> None:
    """Route structlog and the standard library through one JSON renderer on `stream`."""
    global _configured_stream
    out = stream or sys.stdout
    _configured_stream = out
    numeric = logging.getLevelNamesMapping()[level.upper()]
    renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            *_shared_processors(service),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(service), structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_final_processors(),
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for noisy in ("grpc._cython", "asyncio", "aiosqlite", "httpx", "httpcore", "nats", "LiteLLM"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    sys.excepthook = _log_uncaught


def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    structlog.get_logger("proliferate").critical("uncaught_exception", exc_info=(exc_type, exc, tb))


def get_logger(name: str | None = None, **bindings: Any) -> Any:
    """A lazy logger: safe at import time, it takes the configuration in force when it logs."""
    return structlog.get_logger(name or "proliferate", **bindings)


def bind_context(**values: Any) -> None:
    structlog.contextvars.bind_contextvars(**values)


def context_value(key: str) -> Any:
    """A value bound with `bind_context` in this task (None when unbound)."""
    return structlog.contextvars.get_contextvars().get(key)


def clear_context(keys: Iterable[str] | None = None) -> None:
    if keys is None:
        structlog.contextvars.clear_contextvars()
    else:
        structlog.contextvars.unbind_contextvars(*keys)
