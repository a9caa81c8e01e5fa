from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from proliferate.devkit.pytest_plugin import session_log_path
from proliferate.kit import tracing
from proliferate.kit.logs import configure_logging, get_logger, register_secret


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("probe", "debug", stream=stream)
    yield stream
    configure_logging("test", "debug", stream=open(session_log_path(), "a", buffering=1))  # noqa: SIM115


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


class TestLogShape:
    def test_lines_are_json_with_required_fields(self, captured: io.StringIO) -> None:
        get_logger("proliferate.test").info("thing_happened", count=3)
        (record,) = lines(captured)
        assert record["event"] == "thing_happened"
        assert record["level"] == "info"
        assert record["service"] == "probe"
        assert record["count"] == 3
        assert "timestamp" in record

    def test_lines_inside_a_span_carry_trace_and_span_ids(self, captured: io.StringIO) -> None:
        tracing.setup_tracing("probe")
        with tracing.tracer().start_as_current_span("work") as span:
            get_logger().info("inside")
            ctx = span.get_span_context()
        (record,) = lines(captured)
        assert record["trace_id"] == format(ctx.trace_id, "032x")
        assert record["span_id"] == format(ctx.span_id, "016x")

    def test_standard_library_loggers_share_the_shape(self, captured: io.StringIO) -> None:
        logging.getLogger("thirdparty.lib").warning("disk at %d%%", 93)
        (record,) = lines(captured)
        assert record["event"] == "disk at 93%"
        assert record["level"] == "warning"
        assert record["service"] == "probe"


class TestRedaction:
    SECRET = "canary-4f1c8e2a9b7d6c5e3f0a1b2c"

    def test_registered_secret_never_appears(self, captured: io.StringIO) -> None:
        register_secret(self.SECRET)
        log = get_logger()
        log.info("plain", detail=f"token is {self.SECRET}")
        log.info(f"in the event {self.SECRET}")
        log.info("nested", payload={"list": [self.SECRET], "deep": {"x": self.SECRET}})
        try:
            raise ValueError(f"connection to postgres://u:{self.SECRET}@db failed")
        except ValueError:
            log.exception("failed")
        logging.getLogger("thirdparty").error("stdlib %s", self.SECRET, exc_info=RuntimeError(self.SECRET))
        output = captured.getvalue()
        assert self.SECRET not in output
        assert output.count("[REDACTED]") >= 6
        failed = next(r for r in lines(captured) if r["event"] == "failed")
        assert "ValueError" in str(failed["exception"])

    def test_sensitive_keys_are_redacted_whatever_their_value(self, captured: io.StringIO) -> None:
        get_logger().info(
            "sign_in", password="hunter22-not-registered", authorization="Bearer abc", user="ana"
        )
        (record,) = lines(captured)
        assert record["password"] == "[REDACTED]"
        assert record["authorization"] == "[REDACTED]"
        assert record["user"] == "ana"

    def test_bearer_tokens_and_jwts_are_redacted_by_shape(self, captured: io.StringIO) -> None:
        jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhYmMifQ.c2lnbmF0dXJlLXZhbHVl"
        get_logger().info("call", header=f"Bearer {'z' * 30}", forwarded=jwt)
        output = captured.getvalue()
        assert "z" * 30 not in output
        assert jwt not in output
