"""Every service starts, answers gRPC health SERVING, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
from proliferate.devkit.infra import free_port
from proliferate.gateway.bootstrap import DEFINITION as GATEWAY
from proliferate.kit.topology import HTTP_SERVICES, SERVICES

REQUIRED_FIELDS = {"timestamp", "level", "service", "event"}


async def test_every_service_serves_and_stops_cleanly_on_sigterm(spawn: Any) -> None:
    ports = {service: free_port() for service in SERVICES}
    addresses = {f"{s.upper()}_GRPC_ADDRESS": f"127.0.0.1:{p}" for s, p in ports.items()}
    http_ports = {s: free_port() for s in HTTP_SERVICES}
    procs = {
        service: spawn(
            service,
            GRPC_PORT=str(ports[service]),
            **addresses,
            **{f"{s.upper()}_PORT": str(p) for s, p in http_ports.items()},
        )
        for service in SERVICES
    }
    for proc in procs.values():
        proc.start()
    await asyncio.gather(*(proc.wait_serving() for proc in procs.values()))

    async with httpx.AsyncClient(timeout=5) as client:
        for service, port in http_ports.items():
            health = await client.get(f"http://127.0.0.1:{port}/healthz")
            assert health.status_code == 200, service
        ready = await client.get(f"http://127.0.0.1:{http_ports['gateway']}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": dict.fromkeys(SERVICES, "SERVING")}

    for proc in procs.values():
        proc.signal(signal.SIGTERM)
    for service, proc in procs.items():
        assert proc.wait(timeout=30) == 0, f"{service} did not exit cleanly:\n{proc.tail()}"
        records = proc.records()
        assert records, f"{service} logged nothing"
        assert all(line.startswith("{") for line in proc.lines()), f"{service} printed a non-JSON line"
        assert all(set(r) >= REQUIRED_FIELDS for r in records)
        events = [r["event"] for r in records]
        assert "service_started" in events and "service_stopped" in events
        assert all(r["service"] == service for r in records)


async def test_gateway_readyz_is_503_while_a_service_is_down(service_runner: Any) -> None:
    port = free_port()
    gateway = await service_runner(
        GATEWAY,
        GRPC_PORT=str(port),
        GATEWAY_GRPC_ADDRESS=f"127.0.0.1:{port}",
        AUTH_GRPC_ADDRESS=f"127.0.0.1:{free_port()}",
    )
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"http://127.0.0.1:{gateway.http_port}/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["auth"] == "UNREACHABLE"
    assert body["checks"]["gateway"] == "SERVING"


@pytest.mark.parametrize("service", SERVICES)
def test_missing_setting_stops_the_service_with_one_line(service: str, spawn: Any) -> None:
    env = {k: v for k, v in spawn(service).env.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", f"proliferate.{service}"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr == f"{service}: setting DATABASE_URL is missing\n"
    assert "Traceback" not in result.stdout


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GRPC_PORT", "not-a-port"),
        ("NATS_URL", "redis://x"),
        ("SERVICE_AUTH_SECRET", "short"),
        ("LOG_LEVEL", "chatty"),
    ],
)
def test_malformed_setting_stops_the_service_with_one_line(variable: str, value: str, spawn: Any) -> None:
    env = {**spawn("auth").env, variable: value}
    result = subprocess.run(
        [sys.executable, "-m", "proliferate.auth"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"auth: setting {variable} is invalid")
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("setting", "event"), [("DATABASE_URL", "postgres_unreachable"), ("NATS_URL", "nats_unreachable")]
)
async def test_unreachable_dependency_is_retried_and_said(setting: str, event: str, spawn: Any) -> None:
    dead = (
        f"postgresql://proliferate_auth:x@127.0.0.1:{free_port()}/x"
        if setting == "DATABASE_URL"
        else f"nats://127.0.0.1:{free_port()}"
    )
    proc = spawn("auth", **{setting: dead}).start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if sum(1 for r in proc.records() if r.get("event") == event) >= 3:
            break
        await asyncio.sleep(0.2)
    retries = [r for r in proc.records() if r.get("event") == event]
    assert len(retries) >= 3, proc.tail()
    assert proc.process is not None and proc.process.poll() is None  # still trying, not crashed
    delays = [float(r["retry_in_s"]) for r in retries]
    assert delays == sorted(delays) and delays[-1] > delays[0]
    proc.signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
