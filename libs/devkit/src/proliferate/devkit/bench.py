"""`make bench`: run every benchmark and print its figures (never asserted anywhere).

A benchmark is a module `bench/bench_<name>.py` under `libs/*` or `services/*` with
`async def main(env: BenchEnv) -> None`. Each gets the same embedded Postgres (durable
settings: fsync on) and NATS, with every service schema migrated.

    python -m proliferate.devkit.bench              # all
    python -m proliferate.devkit.bench outbox       # only files whose name contains "outbox"
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from proliferate.devkit.infra import EmbeddedNats, EmbeddedPostgres
from proliferate.devkit.paths import repo_root
from proliferate.devkit.platform import PlatformDatabase
from proliferate.kit.db import Database


@dataclass
class BenchEnv:
    platform_db: PlatformDatabase
    nats_url: str
    workdir: Path

    def database(self, service: str, pool_size: int = 10) -> Database:
        return Database(self.platform_db.service_url(service), service, pool_size=pool_size)


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def wait_http(
    url: str,
    process: subprocess.Popen[bytes] | None = None,
    log: Path | None = None,
    timeout: float = 180.0,
) -> None:
    """Until `url` answers 200; fails at once (with the log's tail) if `process` exits first."""

    def tail() -> str:
        return "\n" + log.read_text()[-2000:] if log is not None and log.exists() else ""

    def get() -> int:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - a local URL
            return int(response.status)

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited{tail()}")
        try:
            if await asyncio.to_thread(get) == 200:
                return
        except (OSError, urllib.error.URLError):
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not answer{tail()}")


def machine_line() -> str:
    return f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"


def summarize_ms(values: Sequence[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"p50 {percentile(ms, 50):.2f} ms · p99 {percentile(ms, 99):.2f} ms · "
        f"mean {statistics.fmean(ms):.2f} ms · n={len(ms)}"
    )


def discover(selector: str | None) -> list[Path]:
    root = repo_root()
    files = sorted([*root.glob("libs/*/bench/bench_*.py"), *root.glob("services/*/bench/bench_*.py")])
    return [f for f in files if selector is None or selector in f.name]


async def run(selector: str | None) -> None:
    files = discover(selector)
    if not files:
        print("no benchmarks found")
        return
    workdir = Path(tempfile.mkdtemp(prefix="proliferate-bench-"))
    pg = EmbeddedPostgres(workdir / "postgres").start()
    nats = EmbeddedNats(workdir / "nats").start()
    try:
        platform_db = PlatformDatabase(pg.admin_url, "proliferate_bench", "bench-role-passwords")
        platform_db.create_database()
        platform_db.migrate()
        env = BenchEnv(platform_db, nats.url, workdir)
        print(machine_line())
        for path in files:
            spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            print(f"\n== {path.relative_to(repo_root())} ==")
            started = time.monotonic()
            await module.main(env)
            print(f"({time.monotonic() - started:.1f}s)")
    finally:
        nats.stop()
        pg.stop()


def main() -> None:
    from proliferate.kit.logs import configure_logging

    configure_logging("bench", "warning", stream=sys.stderr)
    asyncio.run(run(sys.argv[1] if len(sys.argv) > 1 else None))


if __name__ == "__main__":
    main()
