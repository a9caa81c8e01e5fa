from __future__ import annotations

import msgspec
import pytest
from proliferate.kit.logs import redact
from proliferate.kit.settings import ServiceSettings, SettingsError, load_settings, load_settings_or_exit

VALID = {
    "DATABASE_URL": "postgresql://svc:pw@db:5432/proliferate",
    "NATS_URL": "nats://nats:4222",
    "SERVICE_AUTH_SECRET": "s" * 40,
}


class ExampleSettings(ServiceSettings, frozen=True, kw_only=True):
    example_port: int = 8080
    example_flag: bool = False


class TestLoadSettings:
    def test_valid_environment_decodes_types(self) -> None:
        settings = load_settings(ExampleSettings, {**VALID, "EXAMPLE_PORT": "9001", "EXAMPLE_FLAG": "true"})
        assert settings.example_port == 9001
        assert settings.example_flag is True
        assert settings.grpc_address("auth").startswith("127.0.0.1:")

    @pytest.mark.parametrize("missing", ["DATABASE_URL", "NATS_URL", "SERVICE_AUTH_SECRET"])
    def test_missing_variable_is_named(self, missing: str) -> None:
        env = {k: v for k, v in VALID.items() if k != missing}
        with pytest.raises(SettingsError) as info:
            load_settings(ExampleSettings, env)
        assert info.value.variable == missing
        assert str(info.value) == f"setting {missing} is missing"

    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            ("EXAMPLE_PORT", "eighty"),
            ("GRPC_PORT", "70000"),
            ("DATABASE_URL", "mysql://x@y/z"),
            ("NATS_URL", "http://nats:4222"),
            ("SERVICE_AUTH_SECRET", "too-short"),
            ("LOG_LEVEL", "loud"),
            ("PROLIFERATE_ENV", "staging"),
        ],
    )
    def test_malformed_variable_is_named(self, variable: str, value: str) -> None:
        with pytest.raises(SettingsError) as info:
            load_settings(ExampleSettings, {**VALID, variable: value})
        assert info.value.variable == variable
        assert str(info.value).startswith(f"setting {variable} is invalid")
        assert "\n" not in str(info.value)

    def test_invalid_secret_value_is_not_echoed(self) -> None:
        with pytest.raises(SettingsError) as info:
            load_settings(ExampleSettings, {**VALID, "SERVICE_AUTH_SECRET": "short-secret"})
        assert "short-secret" not in str(info.value)

    def test_empty_value_counts_as_unset(self) -> None:
        settings = load_settings(ExampleSettings, {**VALID, "EXAMPLE_PORT": ""})
        assert settings.example_port == 8080

    def test_secret_fields_are_registered_for_redaction(self) -> None:
        secret = "registered-secret-" + "x" * 30
        load_settings(ExampleSettings, {**VALID, "SERVICE_AUTH_SECRET": secret})
        assert secret not in redact(f"value={secret}")

    def test_exit_prints_one_line(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as info:
            load_settings_or_exit(ExampleSettings, "example", {})
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert err == "example: setting DATABASE_URL is missing\n"

    def test_settings_are_frozen(self) -> None:
        settings = load_settings(ExampleSettings, VALID)
        with pytest.raises(AttributeError):
            settings.example_port = 1  # type: ignore[misc]
        assert isinstance(settings, msgspec.Struct)
