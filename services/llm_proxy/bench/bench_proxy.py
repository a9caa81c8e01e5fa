"""What the proxy adds to an LLM call: proxied vs direct streams to the same scripted upstream.

Three processes: the scripted model (the upstream), llm_proxy (`python -m proliferate.llm_proxy`,
real Postgres and NATS: every proxied request is authenticated, priced, recorded and published),
and this client. Direct and proxied rounds alternate at each concurrency, so both see the same
machine. Figures: added time to first byte and added total time (p50/p99), per-chunk overhead,
and the proxy's requests per CPU-second (= per core). LiteLLM's own proxy server claims 3.25 ms
median added latency; its ratio is printed. Targets (issue 5): ≤ 1 ms p50, ≤ 5 ms p99 added.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import httpx
import psutil
from proliferate.devkit.bench import BenchEnv, percentile
from proliferate.devkit.infra import free_port
from proliferate.kit.rpc import ServiceClient, ServiceCredentials
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2 as pb
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2_grpc

SECRET = "bench-service-auth-secret-0123456789abcdef"  # noqa: S105 - a bench-only value
LITELLM_CLAIMED_MS = 3.25
TEXT = "The quick brown fox jumps over the lazy dog. " * 6  # ~270 chars, 14 chunks of 20
ROUNDS = {1: 300, 50: 1500, 200: 2000}  # requests per path and concurrency


# Plain classes: the bench runner loads this file without registering it as a module,
# which dataclasses need.
class Sample:
    def __init__(self, ttfb: float, total: float, chunks: int) -> None:
        self.ttfb, self.total, self.chunks = ttfb, total, chunks


class Series:
    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.errors = 0

    def ttfb(self, q: float) -> float:
        return percentile([s.ttfb for s in self.samples], q) * 1000

    def total(self, q: float) -> float:
        return percentile([s.total for s in self.samples], q) * 1000

    def per_chunk(self) -> float:
        gaps = [(s.total - s.ttfb) / max(s.chunks - 1, 1) for s in self.samples]
        return percentile(gaps, 99) * 1000


HEADER = (
    f"{'streams':>8} | {'direct TTFB p50/p99':>19} | {'proxied TTFB p50/p99':>19}"
    f" | {'added TTFB p50/p99':>19} | {'added total p50/p99':>19} | {'chunk p99 dir/prx':>19} | errors"
)


def pair(a: float, b: float) -> str:
    return f"{a:7.2f} / {b:7.2f} ms"


async def one(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> Sample:
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {(await response.read())[:200]!r}")
        first: float | None = None
        chunks = 0
        async for _ in response.content.iter_any():
            chunks += 1
            if first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    return Sample((first or end) - started, end - started, chunks)


async def run(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    total: int,
    concurrency: int,
) -> Series:
    series = Series()
    remaining = iter(range(total))

    async def worker() -> None:
        for _ in remaining:
            try:
                series.samples.append(await one(session, url, body, headers))
            except Exception:
                series.errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return series


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


async def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{url} exited:\n{log.read_text()[-2000:]}")
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} not ready:\n{log.read_text()[-2000:]}")


async def main(env: BenchEnv) -> None:
    scripted_port, proxy_port, grpc_port = free_port(), free_port(), free_port()
    script = env.workdir / "bench-script.json"
    usage = {"input_tokens": 1000, "output_tokens": 70}
    script.write_text(
        json.dumps({"fallback": {"text": TEXT, "chunk_chars": 20, "usage": usage, "times": None}})
    )
    models = env.workdir / "bench-models.yaml"
    scripted = f"http://127.0.0.1:{scripted_port}"
    price = "model_info: {input_cost_per_token: 0.000003, output_cost_per_token: 0.000015}"
    models.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        f"    litellm_params: {{model: openai/bench, api_base: '{scripted}/v1', api_key: sk-bench}}\n"
        f"    {price}\n"
    )
    base_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "NATS_URL")}
    upstream_log, proxy_log = env.workdir / "bench-scripted.log", env.workdir / "bench-proxy.log"
    upstream = start(
        [
            sys.executable,
            "-m",
            "proliferate.scripted_model",
            "--port",
            str(scripted_port),
            "--script",
            str(script),
        ],
        base_env,
        upstream_log,
    )
    proxy_env = {
        **base_env,
        "DATABASE_URL": env.platform_db.service_url("llm_proxy"),
        "NATS_URL": env.nats_url,
        "SERVICE_AUTH_SECRET": SECRET,
        "GRPC_PORT": str(grpc_port),
        "LLM_PROXY_PORT": str(proxy_port),
        "LLM_PROXY_MODELS_FILE": str(models),
        "LOG_LEVEL": "warning",
        "DATABASE_POOL_SIZE": "20",
        "PYTHONUNBUFFERED": "1",
    }
    proxy = start([sys.executable, "-m", "proliferate.llm_proxy"], proxy_env, proxy_log)
    try:
        await wait_http(f"{scripted}/healthz", upstream, upstream_log)
        await wait_http(f"http://127.0.0.1:{proxy_port}/readyz", proxy, proxy_log)
        client = ServiceClient("gateway", "llm_proxy", f"127.0.0.1:{grpc_port}", ServiceCredentials(SECRET))
        stub = client.stub(llm_proxy_pb2_grpc.LlmProxyServiceStub)
        issued = await client.call(
            stub.IssueVirtualKey,
            pb.IssueVirtualKeyRequest(
                organization_id=str(uuid.uuid4()), scope=pb.KEY_SCOPE_SESSION, session_id=str(uuid.uuid4())
            ),
        )
        await client.close()
        await measure(scripted, f"http://127.0.0.1:{proxy_port}", issued.key, psutil.Process(proxy.pid))
    finally:
        for process in (proxy, upstream):
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()


async def measure(scripted: str, proxy_url: str, key: str, proxy_process: psutil.Process) -> None:
    body = json.dumps(
        {"model": "bench", "stream": True, "messages": [{"role": "user", "content": "Say something."}]}
    ).encode()
    direct_body = body.replace(b'"bench"', b'"bench-upstream"')
    headers = {"content-type": "application/json"}
    proxied_headers = {**headers, "authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=120)
    ) as session:
        direct_url, proxy_chat = f"{scripted}/v1/chat/completions", f"{proxy_url}/v1/chat/completions"
        await run(session, direct_url, direct_body, headers, 100, 10)  # warm-up both paths
        await run(session, proxy_chat, body, proxied_headers, 100, 10)
        print("pass-through path (OpenAI → OpenAI-compatible upstream), streaming, 14 chunks per answer:")
        print(HEADER)
        added_p50_at_1 = float("nan")
        for concurrency, total in ROUNDS.items():
            direct, proxied = Series(), Series()
            cpu_before = proxy_process.cpu_times()
            proxied_time = 0.0
            for _ in range(2):  # alternate halves so drift hits both paths alike
                for series, url, payload, head in (
                    (direct, direct_url, direct_body, headers),
                    (proxied, proxy_chat, body, proxied_headers),
                ):
                    started = time.perf_counter()
                    part = await run(session, url, payload, head, total // 2, concurrency)
                    if series is proxied:
                        proxied_time += time.perf_counter() - started
                    series.samples += part.samples
                    series.errors += part.errors
            cpu_after = proxy_process.cpu_times()
            cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
            added_ttfb = (proxied.ttfb(50) - direct.ttfb(50), proxied.ttfb(99) - direct.ttfb(99))
            added_total = (proxied.total(50) - direct.total(50), proxied.total(99) - direct.total(99))
            if concurrency == 1:
                added_p50_at_1 = added_ttfb[0]
            print(
                f"{concurrency:>8} | {pair(direct.ttfb(50), direct.ttfb(99))}"
                f" | {pair(proxied.ttfb(50), proxied.ttfb(99))}"
                f" | {pair(*added_ttfb)} | {pair(*added_total)}"
                f" | {pair(direct.per_chunk(), proxied.per_chunk())} | {direct.errors}/{proxied.errors}"
            )
            rate, per_cpu = len(proxied.samples) / proxied_time, len(proxied.samples) / max(cpu, 1e-9)
            print(
                f"{'':>8}   proxy: {rate:.0f} req/s, {per_cpu:.0f} req per CPU-second"
                f" (= per core; the proxy process used {cpu / proxied_time:.2f} cores)"
            )
        print(
            f"LiteLLM's proxy server claims {LITELLM_CLAIMED_MS} ms median added latency; ours at 1 stream: "
            f"{added_p50_at_1:.2f} ms TTFB p50 ({added_p50_at_1 / LITELLM_CLAIMED_MS:.2f} x the claim)."
        )
        # The translating path, for scale: an Anthropic caller of the OpenAI-compatible route (litellm).
        anthropic = json.dumps(
            {
                "model": "bench",
                "max_tokens": 100,
                "stream": True,
                "messages": [{"role": "user", "content": "Say something."}],
            }
        ).encode()
        translated = await run(
            session, f"{proxy_url}/v1/messages", anthropic, {**headers, "x-api-key": key}, 100, 1
        )
        print(
            "litellm path (Anthropic caller → OpenAI upstream, 1 stream):"
            f" TTFB p50 {translated.ttfb(50):.2f} ms · total p50 {translated.total(50):.2f} ms"
            f" · errors {translated.errors}"
        )
