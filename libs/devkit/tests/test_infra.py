from __future__ import annotations

import os
from pathlib import Path

import nats
import psycopg
import pytest
from proliferate.devkit.pytest_plugin import Infra, _start_infra


def test_this_run_uses_env_urls_or_embedded_servers(infra: Infra) -> None:
    expected_pg = "TEST_DATABASE_URL" if os.environ.get("TEST_DATABASE_URL") else "embedded"
    expected_nats = "TEST_NATS_URL" if os.environ.get("TEST_NATS_URL") else "embedded"
    assert infra.sources == {"postgres": expected_pg, "nats": expected_nats}


def test_given_urls_are_used_and_nothing_is_started(
    infra: Infra, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_DATABASE_URL", infra.server_admin_url)
    monkeypatch.setenv("TEST_NATS_URL", infra.nats_url)
    chosen = _start_infra(tmp_path)
    assert chosen.sources == {"postgres": "TEST_DATABASE_URL", "nats": "TEST_NATS_URL"}
    assert chosen.server_admin_url == infra.server_admin_url
    assert chosen._stops == []
    assert not (tmp_path / "postgres").exists()


async def test_embedded_servers_start_answer_and_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)
    monkeypatch.delenv("TEST_NATS_URL", raising=False)
    started = _start_infra(tmp_path)
    try:
        assert started.sources == {"postgres": "embedded", "nats": "embedded"}
        with psycopg.connect(started.server_admin_url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        nc = await nats.connect(started.nats_url)
        account = await nc.jetstream().account_info()
        assert account is not None
        await nc.close()
    finally:
        started.stop()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(started.server_admin_url, connect_timeout=2)
