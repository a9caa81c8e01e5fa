"""Local provider figures (issue #4): EnsureSandbox → OpenCode ready, cold and from a snapshot;
capture and restore of a 200 MB workspace; 8 concurrent boots against 8 sequential ones.

Targets: ready ≤ 3 s cold on this machine; a burst of 8 ≤ 1.3x sequential per sandbox.
Everything goes through the real service (gRPC) with the real OpenCode, in the isolation this
machine supports (bubblewrap when it works).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from proliferate.agent_contract import OPENCODE_VERSION
from proliferate.devkit.bench import BenchEnv, percentile
from proliferate.devkit.paths import opencode_base_dir, opencode_bin
from proliferate.kit.rpc import ServiceClient, ServiceCredentials
from proliferate.kit.runtime import start_service
from proliferate.kit.settings import load_settings
from proliferate.protos.sandbox.v1 import sandbox_pb2 as pb
from proliferate.protos.sandbox.v1 import sandbox_pb2_grpc
from proliferate.sandbox.bootstrap import definition
from proliferate.sandbox.context import SandboxContext
from proliferate.sandbox.providers.base import SandboxRef
from proliferate.sandbox.settings import Settings

SECRET = "bench-service-auth-secret-0123456789abcdef"  # noqa: S105 - a bench-only value
RUNS = 5
WORKSPACE_MB = 200


def stats(values: list[float]) -> str:
    return f"p50 {percentile(values, 50):.2f} s · p95 {percentile(values, 95):.2f} s · n={len(values)}"


class Bench:
    def __init__(self, client: ServiceClient, org: str) -> None:
        self.client = client
        self.org = org
        self.stub = client.stub(sandbox_pb2_grpc.SandboxServiceStub)

    async def call(self, method: str, request: Any) -> Any:
        return await self.client.call(getattr(self.stub, method), request, timeout=600)

    async def ensure(
        self, *, must_be_ready: bool = True, **kw: Any
    ) -> tuple[float, pb.EnsureSandboxResponse]:
        request = pb.EnsureSandboxRequest(
            organization_id=self.org,
            session_id=kw.pop("session_id", str(uuid.uuid4())),
            prompt_mode="scratch",
            system_prompt="bench",
            agent=pb.AgentConfig(model_id="gpt-5.2"),
            llm=pb.LlmAccess(base_url="http://127.0.0.1:9/v1", api_key="sk-bench-" + uuid.uuid4().hex),
            sandbox_token="sbx-bench-" + uuid.uuid4().hex,
            **kw,
        )
        t0 = time.monotonic()
        reply: pb.EnsureSandboxResponse = await self.call("EnsureSandbox", request)
        elapsed = time.monotonic() - t0
        if must_be_ready and not reply.agent_ready:
            raise RuntimeError("OpenCode was not ready")
        return elapsed, reply

    async def terminate(self, sandbox_id: str) -> None:
        await self.call(
            "TerminateSandbox", pb.TerminateSandboxRequest(organization_id=self.org, sandbox_id=sandbox_id)
        )

    async def exec(self, sandbox_id: str, *argv: str) -> pb.ExecCommandResponse:
        request = pb.ExecCommandRequest(
            organization_id=self.org, sandbox_id=sandbox_id, argv=list(argv), timeout_seconds=600
        )
        reply: pb.ExecCommandResponse = await self.call("ExecCommand", request)
        return reply


async def main(env: BenchEnv) -> None:
    if not opencode_bin().exists():
        print("bench_local: skipped (OpenCode is not installed: run `make opencode`)")
        return
    root = Path(tempfile.mkdtemp(prefix="bench-sandboxes-", dir="/tmp"))
    root.chmod(0o755)
    settings = load_settings(
        Settings,
        {
            "DATABASE_URL": env.platform_db.service_url("sandbox"),
            "NATS_URL": env.nats_url,
            "SERVICE_AUTH_SECRET": SECRET,
            "GRPC_PORT": "0",
            "LOG_LEVEL": "warning",
            "SANDBOX_LOCAL_ROOT": str(root),
            "SANDBOX_LOCAL_ALLOW_UNISOLATED": "true",
            "SANDBOX_LOCAL_MAX_SANDBOXES": "16",
            "SANDBOX_AGENT_READY_TIMEOUT_SECONDS": "120",
            "OPENCODE_BIN": str(opencode_bin()),
            "SANDBOX_LOCAL_PLUGIN_DIR": str(opencode_base_dir(OPENCODE_VERSION)),
        },
    )
    os.environ.setdefault("OPENCODE_BIN", str(opencode_bin()))
    contexts: list[SandboxContext] = []
    running = await start_service(definition(contexts=contexts), settings, ("grpc",))
    client = ServiceClient("gateway", "sandbox", f"127.0.0.1:{running.grpc_port}", ServiceCredentials(SECRET))
    bench = Bench(client, str(uuid.uuid4()))
    try:
        providers = await bench.call("ListProviders", pb.ListProvidersRequest())
        print(f"local provider, isolation {providers.providers[0].isolation}, OpenCode {OPENCODE_VERSION}")
        await bench.terminate((await bench.ensure())[1].sandbox.id)  # warm the page cache
        only = os.environ.get("BENCH_LOCAL_ONLY", "")
        if only == "burst":
            await bench_burst(bench)
            return

        cold: list[float] = []
        for _ in range(RUNS):
            elapsed, reply = await bench.ensure()
            cold.append(elapsed)
            await bench.terminate(reply.sandbox.id)
        print(f"EnsureSandbox → OpenCode ready, cold:          {stats(cold)}  (target ≤ 3 s)")

        _, source = await bench.ensure()
        artifact = (
            await bench.call(
                "CaptureSnapshot",
                pb.CaptureSnapshotRequest(organization_id=bench.org, sandbox_id=source.sandbox.id),
            )
        ).artifact
        await bench.terminate(source.sandbox.id)
        restored: list[float] = []
        for _ in range(RUNS):
            elapsed, reply = await bench.ensure(restore_artifact_id=artifact.id)
            restored.append(elapsed)
            await bench.terminate(reply.sandbox.id)
        print(f"EnsureSandbox → OpenCode ready, from snapshot: {stats(restored)}")

        await bench_workspace(bench)
        await bench_burst(bench)
    finally:
        await client.close()
        await running.stop()
        provider = contexts[0].providers.get("local")
        for entry in sorted((root / "sandboxes").glob("*")):  # whatever a failed run left
            await provider.terminate(provider.handle(SandboxRef(entry.name, entry.name)))
        shutil.rmtree(root, ignore_errors=True)


async def bench_workspace(bench: Bench) -> None:
    _, reply = await bench.ensure()
    sid = reply.sandbox.id
    # 200 MB: half incompressible, half text-like, in files of 2 MB.
    script = (
        f"mkdir -p ~/workspace/big && cd ~/workspace/big && for i in $(seq 1 {WORKSPACE_MB // 4}); do "
        "head -c 2097152 /dev/urandom > r$i.bin; yes 'def handler(request): return response  # line' "
        "| head -c 2097152 > t$i.py; done; du -sm ~/workspace/big | cut -f1"
    )
    made = await bench.exec(sid, "bash", "-c", script)
    t0 = time.monotonic()
    artifact = (
        await bench.call(
            "CaptureSnapshot", pb.CaptureSnapshotRequest(organization_id=bench.org, sandbox_id=sid)
        )
    ).artifact
    capture_s = time.monotonic() - t0
    await bench.terminate(sid)
    restore_s, restored = await bench.ensure(restore_artifact_id=artifact.id)
    create_ms = next(s.ms for s in restored.boot.steps if s.name == "create")
    print(
        f"{made.stdout.strip()} MB workspace: capture {capture_s:.2f} s"
        f" (archive {artifact.size_bytes / 1e6:.0f} MB) · "
        f"restore to OpenCode ready {restore_s:.2f} s (extract {create_ms / 1000:.2f} s)"
    )
    await bench.terminate(restored.sandbox.id)


async def bench_burst(bench: Bench) -> None:
    sequential: list[float] = []
    ids: list[str] = []
    t0 = time.monotonic()
    for _ in range(8):
        elapsed, reply = await bench.ensure()
        sequential.append(elapsed)
        ids.append(reply.sandbox.id)
    sequential_total = time.monotonic() - t0
    for sid in ids:
        await bench.terminate(sid)
    t0 = time.monotonic()
    results = await asyncio.gather(*(bench.ensure(must_be_ready=False) for _ in range(8)))
    burst_total = time.monotonic() - t0
    late = [r for _, r in results if not r.agent_ready]
    for _, reply in results:
        if not reply.agent_ready:
            boot = await bench.exec(
                reply.sandbox.id, "cat", os.path.expanduser("~/.proliferate/boot-status.json")
            )
            print("not ready:", [(s.name, s.status, s.detail) for s in reply.boot.steps], boot.stdout[-1500:])
        await bench.terminate(reply.sandbox.id)
    per_sequential = sequential_total / 8
    per_burst = burst_total / 8
    print(
        f"8 boots: sequential {sequential_total:.1f} s ({per_sequential:.2f} s each) · "
        f"burst {burst_total:.1f} s ({per_burst:.2f} s per sandbox,"
        f" slowest {max(e for e, _ in results):.1f} s) · "
        f"ratio {per_burst / per_sequential:.2f}x (target ≤ 1.3x)"
        + (f" · {len(late)} not ready within the readiness budget" if late else "")
    )
