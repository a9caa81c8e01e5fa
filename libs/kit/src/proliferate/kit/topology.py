"""The platform's shape: its services, their default gRPC ports, and their JetStream streams.

The stream catalog mirrors `contracts.md` §b: each service publishes its facts into one
limits stream, and each work queue is a work-queue stream of its own (JetStream does not
allow a work-queue stream to share subjects with another stream).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

SERVICES: tuple[str, ...] = (
    "gateway",
    "sandbox",
    "automations",
    "triggers",
    "actions",
    "llm_proxy",
    "billing",
    "auth",
    "repos",
    "integrations",
)

# Services with a public HTTP edge (app.py) besides their gRPC port.
HTTP_SERVICES: tuple[str, ...] = ("gateway", "triggers", "llm_proxy")

_GRPC_PORT_BASE = 50051


def default_grpc_port(service: str) -> int:
    return _GRPC_PORT_BASE + SERVICES.index(service)


def default_grpc_address(service: str) -> str:
    return f"127.0.0.1:{default_grpc_port(service)}"


class Retention(StrEnum):
    FACTS = "facts"  # limits retention: any number of durable consumers
    WORK = "work"  # work-queue retention: one consumer, a message is gone once acked


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    retention: Retention = Retention.FACTS
    # JetStream drops a second publish with the same Nats-Msg-Id inside this window.
    duplicate_window_seconds: float = 600.0
    max_age_days: float = 14.0
    description: str = ""


def facts_stream(service: str, subjects: tuple[str, ...]) -> StreamSpec:
    return StreamSpec(
        name=f"PROLIFERATE_{service.upper()}",
        subjects=subjects,
        description=f"facts published by {service}",
    )


def work_stream(subject: str) -> StreamSpec:
    # proliferate.automations.run.execute_requested -> PROLIFERATE_WORK_AUTOMATIONS_RUN_EXECUTE_REQUESTED
    tail = subject.removeprefix("proliferate.").replace(".", "_").upper()
    return StreamSpec(
        name=f"PROLIFERATE_WORK_{tail}",
        subjects=(subject,),
        retention=Retention.WORK,
        max_age_days=7.0,
        description=f"work queue {subject}",
    )


DLQ_STREAM = StreamSpec(
    name="PROLIFERATE_DLQ",
    subjects=("proliferate.dlq.>",),
    max_age_days=30.0,
    description="messages a consumer gave up on, with the error",
)


def dlq_subject(service: str) -> str:
    return f"proliferate.dlq.{service}"


@dataclass(frozen=True)
class ServiceStreams:
    facts: tuple[str, ...]
    work: tuple[str, ...] = field(default_factory=tuple)

    def specs(self, service: str) -> tuple[StreamSpec, ...]:
        return (facts_stream(service, self.facts), *(work_stream(s) for s in self.work))


def _run_statuses(prefix: str) -> tuple[str, ...]:
    return tuple(
        f"{prefix}.{status}"
        for status in (
            "created",
            "started",
            "succeeded",
            "failed",
            "needs_human",
            "timed_out",
            "canceled",
            "skipped",
            "resolved",
        )
    )


STREAMS: dict[str, ServiceStreams] = {
    "gateway": ServiceStreams(facts=("proliferate.gateway.session.*", "proliferate.gateway.message.*")),
    "sandbox": ServiceStreams(
        facts=(
            "proliferate.sandbox.sandbox.*",
            "proliferate.sandbox.snapshot_artifact.*",
            "proliferate.sandbox.usage.*",
        )
    ),
    "automations": ServiceStreams(
        facts=(*_run_statuses("proliferate.automations.run"), "proliferate.automations.automation.*"),
        work=(
            "proliferate.automations.run.execute_requested",
            "proliferate.automations.run.artifact_requested",
            "proliferate.automations.run.notify_requested",
            "proliferate.automations.session.stop_requested",
            "proliferate.automations.slack_message.received",
        ),
    ),
    "triggers": ServiceStreams(
        facts=("proliferate.triggers.github_installation.*", "proliferate.triggers.nango_auth.*"),
        work=("proliferate.triggers.webhook.received", "proliferate.triggers.event.accepted"),
    ),
    "actions": ServiceStreams(
        facts=(
            "proliferate.actions.invocation.*",
            "proliferate.actions.grant.*",
            "proliferate.actions.policy.*",
        )
    ),
    "llm_proxy": ServiceStreams(
        facts=("proliferate.llm_proxy.spend.*", "proliferate.llm_proxy.virtual_key.*"),
    ),
    "billing": ServiceStreams(
        facts=("proliferate.billing.org.*", "proliferate.billing.account.*", "proliferate.billing.balance.*"),
        work=("proliferate.billing.enforcement.requested", "proliferate.billing.reconcile.requested"),
    ),
    "auth": ServiceStreams(
        facts=(
            "proliferate.auth.user.*",
            "proliferate.auth.organization.*",
            "proliferate.auth.member.*",
            "proliferate.auth.invitation.*",
            "proliferate.auth.onboarding.*",
            "proliferate.auth.api_key.*",
            "proliferate.auth.sign_in.*",
            "proliferate.auth.impersonation.*",
        )
    ),
    "repos": ServiceStreams(
        facts=(
            "proliferate.repos.repo.*",
            "proliferate.repos.configuration.*",
            "proliferate.repos.snapshot.*",
            "proliferate.repos.secret_file.*",
            "proliferate.repos.base_snapshot.built",
            "proliferate.repos.base_snapshot.failed",
        ),
        work=("proliferate.repos.base_snapshot.build_requested",),
    ),
    "integrations": ServiceStreams(
        facts=(
            "proliferate.integrations.integration.*",
            "proliferate.integrations.connector.*",
            "proliferate.integrations.secret.*",
            "proliferate.integrations.slack_installation.*",
        )
    ),
}


def all_stream_specs() -> tuple[StreamSpec, ...]:
    specs: list[StreamSpec] = [DLQ_STREAM]
    for service in SERVICES:
        specs.extend(STREAMS[service].specs(service))
    return tuple(specs)
