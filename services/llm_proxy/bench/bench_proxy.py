"""What the proxy adds to an LLM call: proxied vs direct streams to the same scripted upstream.

Three processes: the scripted model (the upstream), llm_proxy (`python -m proliferate.llm_proxy`,
real Postgres and NATS: every proxied request is authenticated, priced, recorded and published),
and this client. Direct and proxied rounds alternate at each concurrency, so both see the same
machine. Figures: added time to first byte and added total time (p50/p99), per-chunk overhead,
and the proxy's requests per CPU-second (= per core). Two load shapes: streams sent back to back
as fast as the upstream answers (saturates the 2 cores that client, upstream and proxy share: a
throughput figure), and streams paced like a vendor's, arriving spread out as they do in steady
state (llm-proxy.md's latency budget). LiteLLM's own proxy server claims 3.25 ms median added
latency; its ratio is printed. Targets (issue 5): ≤ 1 ms p50, ≤ 5 ms p99 added.
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
import psutil
from proliferate.devkit.bench import BenchEnv, percentile, wait_http
from proliferate.devkit.infra import free_port
from proliferate.kit.rpc import ServiceClient, ServiceCredentials
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2 as pb
from proliferate.protos.llm_proxy.v1 import llm_proxy_pb2_grpc

SECRET = "bench-service-auth-secret-0123456789abcdef"  # noqa: S105 - a bench-only value
LITELLM_CLAIMED_MS = 3.25
TEXT = "The quick brown fox jumps over the lazy dog. " * 6  # 270 chars
TEXT_CHUNKS = 14  # of 20 characters
ROUNDS = {1: 300, 50: 1500, 200: 2000}  # requests per path and concurrency
# Paced like a vendor: the first token after 50 ms, then a chunk every 20 ms (~0.35 s a stream),
# so concurrency is streams in flight rather than a saturated CPU (llm-proxy.md's latency budget).
FIRST_TOKEN_S, CHUNK_S = 0.05, 0.02
PACED_ROUNDS = {50: 2000, 200: 2000}


# Plain classes: the bench runner loads this file without registering it as a module,
# which dataclasses need.
class Sample:
    def __init__(self, ttfb: float, total: float) -> None:
        self.ttfb, self.total = ttfb, total


class Series:
    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.errors = 0
        self.first_error = ""

    def ttfb(self, q: float) -> float:
        return percentile([s.ttfb for s in self.samples], q) * 1000

    def total(self, q: float) -> float:
        return percentile([s.total for s in self.samples], q) * 1000

    def per_chunk(self) -> float:
        # Over the text chunks both paths carry: counting reads instead would charge the proxy
        # for the usage-only event it does not forward, and for events that share a read.
        gaps = [(s.total - s.ttfb) / (TEXT_CHUNKS - 1) for s in self.samples]
        return percentile(gaps, 99) * 1000


HEADER = (
    f"{'streams':>8} | {'direct TTFB p50/p99':>19} | {'proxied TTFB p50/p99':>19}"
    f" | {'added TTFB p50/p99':>19} | {'added total p50/p99':>19} | {'chunk p99 dir/prx':>19} | errors"
)


def report_errors(direct: Series, proxied: Series) -> None:
    for name, series in (("direct", direct), ("proxied", proxied)):
        if series.errors:
            print(f"{'':>8}   first {name} error: {series.first_error}")


def with_usage(body: bytes) -> bytes:
    """The direct call asks for the usage chunk the proxy always asks the upstream for (it reads
    spend from it), so both paths make the upstream do the same work."""
    return json.dumps({**json.loads(body), "stream_options": {"include_usage": True}}).encode()


def pair(a: float, b: float) -> str:
    return f"{a:7.2f} / {b:7.2f} ms"


async def one(session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> Sample:
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {(await response.read())[:200]!r}")
        first: float | None = None
        async for _ in response.content.iter_any():
            if first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    return Sample((first or end) - started, end - started)


async def run(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    total: int,
    concurrency: int,
    stagger_s: float = 0.0,
) -> Series:
    series = Series()
    remaining = iter(range(total))

    async def worker(index: int) -> None:
        await asyncio.sleep(index * stagger_s)
        for _ in remaining:
            try:
                series.samples.append(await one(session, url, body, headers))
            except Exception as exc:
                series.errors += 1
                series.first_error = series.first_error or f"{type(exc).__name__}: {exc}"[:200]

    await asyncio.gather(*(worker(index) for index in range(concurrency)))
    return series


def start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


async def main(env: BenchEnv) -> None:
    scripted_port, proxy_port, grpc_port = free_port(), free_port(), free_port()
    script = env.workdir / "bench-script.json"
    usage = {"input_tokens": 1000, "output_tokens": 70}
    answer = {"text": TEXT, "chunk_chars": 20, "usage": usage, "times": None}
    pacing = {"delay_s": FIRST_TOKEN_S, "chunk_delay_s": CHUNK_S}
    paced = {**answer, **pacing, "when": {"model": "paced-upstream"}}
    script.write_text(json.dumps({"turns": [paced], "fallback": answer}))
    models = env.workdir / "bench-models.yaml"
    scripted = f"http://127.0.0.1:{scripted_port}"
    price = "model_info: {input_cost_per_token: 0.000003, output_cost_per_token: 0.000015}"
    upstream_at = f"api_base: '{scripted}/v1', api_key: sk-bench"
    models.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        f"    litellm_params: {{model: openai/bench, api_base: '{scripted}/v1', api_key: sk-bench}}\n"
        f"    {price}\n"
        "  - model_name: bench-paced\n"
        f"    litellm_params: {{model: openai/paced-upstream, {upstream_at}}}\n"
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
    direct_body = with_usage(body.replace(b'"bench"', b'"bench-upstream"'))
    headers = {"content-type": "application/json"}
    proxied_headers = {**headers, "authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=120)
    ) as session:
        direct_url, proxy_chat = f"{scripted}/v1/chat/completions", f"{proxy_url}/v1/chat/completions"
        await run(session, direct_url, direct_body, headers, 100, 10)  # warm-up both paths
        await run(session, proxy_chat, body, proxied_headers, 100, 10)
        print(
            "pass-through path (OpenAI → OpenAI-compatible upstream), streaming,"
            f" {TEXT_CHUNKS} chunks per answer:"
        )
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
                    series.first_error = series.first_error or part.first_error
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
            report_errors(direct, proxied)
            rate, per_cpu = len(proxied.samples) / proxied_time, len(proxied.samples) / max(cpu, 1e-9)
            print(
                f"{'':>8}   proxy: {rate:.0f} req/s, {per_cpu:.0f} req per CPU-second"
                f" (= per core; the proxy process used {cpu / proxied_time:.2f} cores)"
            )
        await settle(proxy_process)
        await measure_paced(session, scripted, proxy_url, proxied_headers)
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


async def settle(process: psutil.Process, timeout: float = 60.0) -> None:
    """Until the proxy has finished the last load's leftovers (spend writes, event relay), so
    one load shape's backlog is not measured as the next one's latency."""
    deadline = time.monotonic() + timeout
    process.cpu_percent()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        if process.cpu_percent() < 5:
            return


async def measure_paced(
    session: aiohttp.ClientSession, scripted: str, proxy_url: str, proxied_headers: dict[str, str]
) -> None:
    """Streams paced like a vendor's: what a request in flight pays while others are too."""
    body = json.dumps(
        {"model": "bench-paced", "stream": True, "messages": [{"role": "user", "content": "Say something."}]}
    ).encode()
    direct_body = with_usage(body.replace(b'"bench-paced"', b'"paced-upstream"'))
    headers = {"content-type": "application/json"}
    direct_url, proxy_chat = f"{scripted}/v1/chat/completions", f"{proxy_url}/v1/chat/completions"
    print(
        f"paced streams (first token after {FIRST_TOKEN_S * 1000:.0f} ms,"
        f" a chunk every {CHUNK_S * 1000:.0f} ms);"
        " llm-proxy.md budget at 50 streams: added TTFB ≤ 10 ms p50 / ≤ 30 ms p99, per chunk ≤ 2 ms p99:"
    )
    print(
        f"{'streams':>8} | {'direct TTFB p50/p99':>19} | {'proxied TTFB p50/p99':>19}"
        f" | {'added TTFB p50/p99':>19} | {'chunk p99 dir/prx':>19} | {'added/chunk':>11} | errors"
    )
    for concurrency, total in PACED_ROUNDS.items():
        direct, proxied = Series(), Series()
        for _ in range(2):  # alternate halves so drift hits both paths alike
            for series, url, payload, head in (
                (direct, direct_url, direct_body, headers),
                (proxied, proxy_chat, body, proxied_headers),
            ):
                # Streams start spread over one stream's length, as `concurrency` streams in
                # flight arrive in steady state; all at once, the last of the herd waits for
                # the admission of all the others on both paths (~25 ms through the proxy).
                stagger = (FIRST_TOKEN_S + (TEXT_CHUNKS - 1) * CHUNK_S) / concurrency
                await run(session, url, payload, head, concurrency, concurrency, stagger)  # untimed
                part = await run(session, url, payload, head, total // 2, concurrency, stagger)
                series.samples += part.samples
                series.errors += part.errors
                series.first_error = series.first_error or part.first_error
        added = pair(proxied.ttfb(50) - direct.ttfb(50), proxied.ttfb(99) - direct.ttfb(99))
        per_chunk = f"{proxied.per_chunk() - direct.per_chunk():8.2f} ms"
        print(
            f"{concurrency:>8} | {pair(direct.ttfb(50), direct.ttfb(99))}"
            f" | {pair(proxied.ttfb(50), proxied.ttfb(99))} | {added}"
            f" | {pair(direct.per_chunk(), proxied.per_chunk())} | {per_chunk:>11}"
            f" | {direct.errors}/{proxied.errors}"
        )
        report_errors(direct, proxied)
