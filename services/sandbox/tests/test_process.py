"""The service as its own process with the `make dev` hook's environment: it starts with the
local provider by default (bubblewrap when it works here) and serves the gateway."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from proliferate.devkit.infra import free_port
from proliferate.devkit.pytest_plugin import TEST_SERVICE_AUTH_SECRET, register_log_file, service_env
from proliferate.kit.rpc import ServiceClient, ServiceCredentials
from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb
from proliferate.protos.sandbox.v1 import sandbox_pb2_grpc
from proliferate.sandbox import dev


async def test_service_process_with_the_dev_hook_environment(platform_db: Any, infra: Any) -> None:
    dev_dir = Path(tempfile.mkdtemp(prefix="sbx-dev-", dir="/tmp"))
    dev_dir.chmod(0o755)
    hook = dev.dev_environment(SimpleNamespace(dev_dir=dev_dir, gateway_url="http://127.0.0.1:8080"))[
        "sandbox"
    ]
    port = free_port()
    env = {
        **os.environ,
        **service_env(platform_db, infra, "sandbox", GRPC_PORT=str(port)),
        **hook,
        "PYTHONUNBUFFERED": "1",
    }
    env["SANDBOX_LOCAL_ALLOW_UNISOLATED"] = "true"  # bubblewrap may be missing on the runner
    log_path = register_log_file(dev_dir / "sandbox.log")
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "proliferate.sandbox"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                assert process.poll() is None, log_path.read_text()[-2000:]
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.aio.AioRpcError:
                    pass
                assert time.monotonic() < deadline, log_path.read_text()[-2000:]
                await asyncio.sleep(0.2)
        client = ServiceClient(
            "gateway", "sandbox", f"127.0.0.1:{port}", ServiceCredentials(TEST_SERVICE_AUTH_SECRET)
        )
        listed = await client.call(
            client.stub(sandbox_pb2_grpc.SandboxServiceStub).ListProviders, pb.ListProvidersRequest()
        )
        await client.close()
        [local] = listed.providers
        assert (local.kind, local.is_default, local.healthy) == ("local", True, True)
        assert local.isolation in ("bwrap", "process")
        assert (dev_dir / "sandboxes" / "toolcache").is_dir()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    assert process.returncode == 0
