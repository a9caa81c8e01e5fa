"""Running a service process: connect, assemble, serve, and stop cleanly on SIGTERM.

Each service declares a `ServiceDefinition` in its `bootstrap.py` (its composition root).
This module does the rest, the same way for all ten: wait for Postgres and NATS (retrying
with backoff and saying so), declare the streams, start the gRPC server, the outbox relay,
the consumers, the periodic jobs and the HTTP edge, then report `SERVING`. SIGTERM or
SIGINT turns health to `NOT_SERVING` and stops the parts in reverse order.

A process may run only some parts (`python -m proliferate.<service> grpc worker`), so a
deployment can scale the edge and the workers separately; by default it runs all.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import uvicorn
from litestar.types import ASGIApp
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from proliferate.kit import bus
from proliferate.kit.bus import Consumer, ConsumerSpec, JetStreamPublisher
from proliferate.kit.db import Database
from proliferate.kit.logs import configure_logging, get_logger
from proliferate.kit.outbox import Relay
from proliferate.kit.periodic import PeriodicJob, PeriodicRunner
from proliferate.kit.rpc import GrpcServer, ServiceClients, ServiceCredentials
from proliferate.kit.settings import ServiceSettings, load_settings_or_exit
from proliferate.kit.topology import DLQ_STREAM, SERVICES, STREAMS, StreamSpec, all_stream_specs
from proliferate.kit.tracing import setup_tracing

log = get_logger("proliferate.kit.runtime")

S = TypeVar("S", bound=ServiceSettings)
ROLES = ("grpc", "worker", "http")


@dataclass
class Runtime(Generic[S]):
    """The connections a service is assembled from (one per process)."""

    service: str
    settings: S
    db: Database
    nc: NatsClient
    js: JetStreamContext
    credentials: ServiceCredentials
    clients: ServiceClients

    @classmethod
    async def open(cls, service: str, settings: S) -> Runtime[S]:
        db = Database(settings.database_url, service, pool_size=settings.database_pool_size)
        await db.wait_until_reachable()
        nc = await bus.connect(settings.nats_url, name=f"proliferate-{service}")
        credentials = ServiceCredentials(settings.service_auth_secret, settings.service_auth_previous_secret)
        clients = ServiceClients(service, credentials, {s: settings.grpc_address(s) for s in SERVICES})
        return cls(service, settings, db, nc, nc.jetstream(), credentials, clients)

    async def database_check(self) -> str:
        async with self.db.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
        return "ok"

    async def nats_check(self) -> str:
        return "ok" if self.nc.is_connected else "DISCONNECTED"

    async def close(self) -> None:
        await self.clients.close()
        with contextlib.suppress(Exception):
            await self.nc.drain()
        await self.db.dispose()


@dataclass(frozen=True)
class HttpEdge:
    app: ASGIApp
    host: str
    port: int


@dataclass(frozen=True)
class ServiceParts:
    """What a service's bootstrap assembles from its runtime."""

    register_grpc: Callable[[GrpcServer], None] = lambda server: None
    consumers: Sequence[ConsumerSpec] = ()
    jobs: Sequence[PeriodicJob] = ()
    http: HttpEdge | None = None
    on_stop: Callable[[], Awaitable[None]] | None = None
    # Awaited first on stop, while every part still serves (an edge answers new requests
    # 503 and lets in-flight ones finish); the parts stop when it returns.
    drain: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True)
class ServiceDefinition(Generic[S]):
    name: str
    settings_type: type[S]
    assemble: Callable[[Runtime[S]], Awaitable[ServiceParts]]

    def streams(self, consumers: Sequence[ConsumerSpec]) -> tuple[StreamSpec, ...]:
        """Its own streams, the dead-letter stream, and every stream it consumes from."""
        by_name = {s.name: s for s in all_stream_specs()}
        own = STREAMS[self.name].specs(self.name) if self.name in STREAMS else ()
        consumed = tuple(by_name[c.stream] for c in consumers if c.stream in by_name)
        seen: dict[str, StreamSpec] = {s.name: s for s in (DLQ_STREAM, *own, *consumed)}
        return tuple(seen.values())


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The service runtime owns signals; uvicorn must not re-raise them after shutdown.
        yield


@dataclass
class RunningService(Generic[S]):
    """A started service: its parts, for the process entry point and for tests."""

    definition: ServiceDefinition[S]
    runtime: Runtime[S]
    parts: ServiceParts
    roles: frozenset[str]
    grpc: GrpcServer | None = None
    relay: Relay | None = None
    consumers: list[Consumer] = field(default_factory=list)
    periodic: PeriodicRunner | None = None
    http_server: uvicorn.Server | None = None
    http_port: int | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    @property
    def grpc_port(self) -> int:
        assert self.grpc is not None
        return self.grpc.port

    async def start(self) -> None:
        rt = self.runtime
        settings = rt.settings
        await bus.ensure_streams(rt.js, self.definition.streams(self.parts.consumers))
        if "worker" in self.roles:
            self.relay = Relay(
                rt.db,
                JetStreamPublisher(rt.js),
                batch_size=settings.outbox_batch_size,
                poll_seconds=settings.outbox_poll_seconds,
            )
            self._spawn(self.relay.run(), "outbox-relay")
            for spec in self.parts.consumers:
                consumer = Consumer(self.definition.name, spec, rt.db, rt.js)
                await consumer.ensure()
                self.consumers.append(consumer)
                self._spawn(consumer.run(), f"consumer-{spec.durable}")
            self.periodic = PeriodicRunner(rt.db, tuple(self.parts.jobs))
            self._spawn(self.periodic.run(), "periodic-jobs")
        if "http" in self.roles and self.parts.http is not None:
            await self._start_http(self.parts.http)
        if "grpc" in self.roles:
            port = (
                settings.grpc_port if settings.grpc_port is not None else _default_port(self.definition.name)
            )
            self.grpc = GrpcServer(
                self.definition.name,
                rt.credentials,
                host=settings.grpc_host,
                port=port,
                grace_seconds=settings.grpc_grace_seconds,
            )
            self.parts.register_grpc(self.grpc)
            await self.grpc.start()
        log.info(
            "service_started",
            roles=sorted(self.roles),
            grpc_port=self.grpc.port if self.grpc else None,
            http_port=self.http_port,
        )

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        task.add_done_callback(_report_crash)
        self._tasks.append(task)

    async def _start_http(self, edge: HttpEdge) -> None:
        config = uvicorn.Config(
            edge.app,
            host=edge.host,
            port=edge.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_keep_alive=self.runtime.settings.http_keepalive_seconds,
        )
        server = _Uvicorn(config)
        self.http_server = server
        task = asyncio.create_task(server.serve(), name="http")
        self._tasks.append(task)
        while not server.started:
            if task.done():
                task.result()  # surfaces a bind error
                raise RuntimeError("the HTTP edge stopped while starting")
            await asyncio.sleep(0.02)
        sockets = [s for srv in server.servers for s in srv.sockets]
        self.http_port = int(sockets[0].getsockname()[1]) if sockets else edge.port

    async def stop(self) -> None:
        log.info("service_stopping")
        if self.grpc is not None:
            await self.grpc.set_serving(False)
        if self.parts.drain is not None:
            await self.parts.drain()
        if self.http_server is not None:
            self.http_server.should_exit = True
        for consumer in self.consumers:
            consumer.stop()
        if self.periodic is not None:
            self.periodic.stop()
        if self.relay is not None:
            self.relay.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=30)
            for task in pending:
                task.cancel()
        if self.grpc is not None:
            await self.grpc.stop()
        if self.parts.on_stop is not None:
            await self.parts.on_stop()
        await self.runtime.close()
        log.info("service_stopped")


def _report_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("service_task_crashed", task=task.get_name(), exc_info=task.exception())


def _default_port(service: str) -> int:
    from proliferate.kit.topology import default_grpc_port

    return default_grpc_port(service)


async def start_service(
    definition: ServiceDefinition[S], settings: S, roles: Sequence[str] = ROLES
) -> RunningService[S]:
    running = await assemble_service(definition, settings, roles)
    try:
        await running.start()
    except BaseException:
        await running.stop()
        raise
    return running


async def assemble_service(
    definition: ServiceDefinition[S], settings: S, roles: Sequence[str] = ROLES
) -> RunningService[S]:
    """Connect (waiting for Postgres and NATS) and assemble; nothing is serving yet."""
    runtime = await Runtime.open(definition.name, settings)
    try:
        parts = await definition.assemble(runtime)
    except BaseException:
        await runtime.close()
        raise
    return RunningService(definition, runtime, parts, frozenset(roles))


async def _until(stop: asyncio.Event, work: Awaitable[Any]) -> tuple[bool, Any]:
    """Run `work` unless `stop` is set first; returns (finished, result)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if task.done():
        return True, task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False, None


async def serve(definition: ServiceDefinition[S], settings: S, roles: Sequence[str] = ROLES) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    assembled, running = await _until(stop, assemble_service(definition, settings, roles))
    if not assembled:
        log.info("service_stopped_before_start")  # still waiting for Postgres or NATS
        return
    # What start-up built (imports, litellm's tables: ~400k objects) lives as long as the process;
    # left in the collected generations, every full collection walks it and stalls the loop
    # ~150 ms. Frozen, collections see only what requests allocate.
    _freeze_heap()
    started, _ = await _until(stop, running.start())
    if started:
        _freeze_heap()  # and what starting built: pools, caches, compiled statements
        await stop.wait()
    await running.stop()  # also stops whatever a start interrupted by a signal had begun


def _freeze_heap() -> None:
    gc.collect()
    gc.freeze()


def run_main(definition: ServiceDefinition[S], argv: Sequence[str] | None = None) -> None:
    """The process entry point: `python -m proliferate.<service> [grpc] [worker] [http]`."""
    args = list(sys.argv[1:] if argv is None else argv)
    unknown = [a for a in args if a not in ROLES]
    if unknown:
        print(
            f"{definition.name}: unknown role {unknown[0]!r} (expected {', '.join(ROLES)})", file=sys.stderr
        )
        raise SystemExit(2)
    configure_logging(definition.name)
    settings = load_settings_or_exit(definition.settings_type, definition.name)
    configure_logging(definition.name, settings.log_level)
    setup_tracing(definition.name, otlp_endpoint=settings.otel_exporter_otlp_endpoint)
    try:
        asyncio.run(serve(definition, settings, args or ROLES))
    except Exception:
        log.critical("service_crashed", exc_info=True)
        raise SystemExit(1) from None
