"""tests-e2e: black-box tests that start real service processes and drive public edges."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from proliferate.devkit.infra import free_port
from proliferate.devkit.platform import PlatformDatabase
from proliferate.devkit.pytest_plugin import Infra, register_log_file, service_env


@dataclass
class ServiceProcess:
    """One service running as its own process (`python -m proliferate.<service>`)."""

    service: str
    env: dict[str, str]
    log_path: Path
    grpc_port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, *roles: str) -> ServiceProcess:
        register_log_file(self.log_path)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"proliferate.{self.service}", *roles],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    async def wait_serving(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with grpc.aio.insecure_channel(f"127.0.0.1:{self.grpc_port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(
                        f"{self.service} exited with {self.process.returncode}:\n{self.tail()}"
                    )
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.service} not SERVING after {timeout}s:\n{self.tail()}")

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines() if line.startswith("{")]

    def tail(self, n: int = 30) -> str:
        return "\n".join(self.lines()[-n:])


@pytest.fixture
def spawn(platform_db: PlatformDatabase, infra: Infra, tmp_path: Path) -> Iterator[object]:
    """`spawn("auth", **env_overrides)` → a ServiceProcess (not started); killed after the test."""
    made: list[ServiceProcess] = []

    def make(service: str, **overrides: str) -> ServiceProcess:
        port = int(overrides.pop("GRPC_PORT", free_port()))
        env = {
            **os.environ,
            **service_env(platform_db, infra, service, GRPC_PORT=str(port), **overrides),
            "PYTHONUNBUFFERED": "1",
        }
        proc = ServiceProcess(service, env, tmp_path / f"{service}-{len(made)}.log", port)
        made.append(proc)
        return proc

    yield make
    for proc in made:
        proc.kill()
