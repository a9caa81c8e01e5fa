"""Onboarding and the trial handoff to billing (auth.md §5.8; §10 lines 23-26), against
in-process fake billing / integrations / repos gRPC servers speaking the mirrored messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
import pytest_asyncio
from proliferate.auth.onboarding.peers import CONNECTION_SUMMARY, LIST_REPOS, START_TRIAL, GrpcPeers
from proliferate.devkit.infra import free_port
from proliferate.devkit.pytest_plugin import TEST_SERVICE_AUTH_SECRET
from proliferate.kit.rpc import GrpcServer, ServiceClients, ServiceCredentials
from proliferate.protos.auth.v1 import auth_pb2 as pb
from proliferate.protos.auth.v1 import peers_pb2

from ..conftest import AuthApi, StartAuth, expect_error  # noqa: TID252 - the shared test helpers


@dataclass
class FakePeers:
    """Billing, integrations and repos as far as onboarding sees them."""

    checkout_url: str = ""
    billing_delay: float = 0.0
    trials: list[peers_pb2.StartTrialRequest] = field(default_factory=list)
    providers: list[str] = field(default_factory=lambda: ["github"])

    async def start_trial(self, request: peers_pb2.StartTrialRequest, context: Any) -> peers_pb2.TrialResult:
        self.trials.append(request)
        await asyncio.sleep(self.billing_delay)
        return peers_pb2.TrialResult(
            checkout_required=bool(self.checkout_url), url=self.checkout_url, state="unconfigured"
        )

    async def summary(self, request: Any, context: Any) -> peers_pb2.ConnectionSummary:
        return peers_pb2.ConnectionSummary(connected_providers=self.providers)

    async def repos(self, request: Any, context: Any) -> peers_pb2.ListReposResponse:
        return peers_pb2.ListReposResponse(repos=[peers_pb2.RepoItem(id="r1", name="acme/api")])


def _serve(server: GrpcServer, path: str, fn: Any, request_type: Any) -> None:
    service, method = path.strip("/").split("/")

    def add(_: Any, grpc_server: grpc.aio.Server) -> None:
        handler = grpc.unary_unary_rpc_method_handler(
            fn,
            request_deserializer=request_type.FromString,
            response_serializer=lambda m: m.SerializeToString(),
        )
        grpc_server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(service, {method: handler}),)
        )

    server.register(service, add, None, {method: {"auth"}})


@dataclass
class Peers:
    fake: FakePeers
    addresses: dict[str, str]


@pytest_asyncio.fixture
async def peers() -> AsyncIterator[Peers]:
    fake = FakePeers()
    credentials = ServiceCredentials(TEST_SERVICE_AUTH_SECRET)
    servers = {
        "billing": GrpcServer("billing", credentials, port=0, grace_seconds=0.1),
        "integrations": GrpcServer("integrations", credentials, port=0, grace_seconds=0.1),
        "repos": GrpcServer("repos", credentials, port=0, grace_seconds=0.1),
    }
    _serve(servers["billing"], START_TRIAL, fake.start_trial, peers_pb2.StartTrialRequest)
    _serve(servers["integrations"], CONNECTION_SUMMARY, fake.summary, peers_pb2.GetConnectionSummaryRequest)
    _serve(servers["repos"], LIST_REPOS, fake.repos, peers_pb2.ListReposRequest)
    for server in servers.values():
        await server.start()
    yield Peers(fake, {name: server.address for name, server in servers.items()})
    for server in servers.values():
        await server.stop()


async def start_with(
    start_auth: StartAuth, addresses: dict[str, str], billing_timeout: float = 5.0
) -> AuthApi:
    clients = ServiceClients("auth", ServiceCredentials(TEST_SERVICE_AUTH_SECRET), addresses)
    return await start_auth(overrides={"peers": GrpcPeers(clients, billing_timeout=billing_timeout)})


def dead() -> str:
    return f"127.0.0.1:{free_port()}"


class TestStatus:
    async def test_reports_what_integrations_and_repos_know(
        self, start_auth: StartAuth, peers: Peers
    ) -> None:
        auth = await start_with(start_auth, peers.addresses)
        owner = await auth.sign_up()
        status = await auth.call("GetOnboardingStatus", principal=await auth.as_member(owner))
        assert (status.status, status.onboarding_complete, status.degraded) == ("pending", False, False)
        assert status.has_github_connection and not status.has_slack_connection
        assert status.repos_known and [(r.id, r.name) for r in status.repos] == [("r1", "acme/api")]

    async def test_with_integrations_down_it_is_still_answered_and_degraded(
        self, start_auth: StartAuth, peers: Peers
    ) -> None:
        auth = await start_with(start_auth, {**peers.addresses, "integrations": dead()})
        owner = await auth.sign_up()
        status = await auth.call("GetOnboardingStatus", principal=await auth.as_member(owner))
        assert status.degraded
        assert not status.HasField("has_github_connection") and not status.HasField("has_slack_connection")
        assert status.repos_known

    async def test_with_the_real_services_not_answering_the_method_it_is_degraded(
        self, auth: AuthApi
    ) -> None:
        owner = await auth.sign_up()
        status = await auth.call("GetOnboardingStatus", principal=await auth.as_member(owner))
        assert status.degraded and not status.repos_known

    async def test_answers_are_merged_and_limited(self, start_auth: StartAuth, peers: Peers) -> None:
        auth = await start_with(start_auth, peers.addresses)
        owner = await auth.sign_up()
        principal = await auth.as_member(owner)
        await auth.call(
            "SaveOnboardingAnswers",
            pb.OnboardingAnswers(selected_tools=["linear"], team_size="5-10"),
            principal,
        )
        status = await auth.call(
            "SaveOnboardingAnswers", pb.OnboardingAnswers(referral_source="a friend"), principal
        )
        assert list(status.answers.selected_tools) == ["linear"]
        assert (status.answers.team_size, status.answers.referral_source) == ("5-10", "a friend")
        await expect_error(
            auth.call("SaveOnboardingAnswers", pb.OnboardingAnswers(selected_tools=["t" * 65]), principal),
            "invalid_argument",
        )


class TestTrial:
    async def test_a_checkout_url_from_billing_sets_checkout_pending_and_is_returned(
        self, start_auth: StartAuth, peers: Peers
    ) -> None:
        peers.fake.checkout_url = "https://checkout.example/abc"
        auth = await start_with(start_auth, peers.addresses)
        owner = await auth.sign_up("trial@example.com")
        started = await auth.call("StartTrial", pb.StartTrialRequest(plan="pro"), await auth.as_member(owner))
        assert (started.status, started.checkout_url) == ("checkout_pending", "https://checkout.example/abc")
        [trial] = peers.fake.trials
        assert (trial.organization_id, trial.plan, trial.user_email) == (
            owner.org_id,
            "pro",
            "trial@example.com",
        )
        status = await auth.call("GetOnboardingStatus", principal=await auth.as_member(owner))
        assert status.status == "checkout_pending"
        assert "proliferate.auth.onboarding.completed" not in await auth.outbox_subjects()

    async def test_no_checkout_completes_onboarding_once(self, start_auth: StartAuth, peers: Peers) -> None:
        auth = await start_with(start_auth, peers.addresses)
        owner = await auth.sign_up()
        started = await auth.call("StartTrial", pb.StartTrialRequest(plan="dev"), await auth.as_member(owner))
        assert (started.status, started.checkout_url) == ("completed", "")
        assert (await auth.outbox_subjects()).count("proliferate.auth.onboarding.completed") == 1

    async def test_a_billing_timeout_is_503_billing_unavailable_and_changes_nothing(
        self, start_auth: StartAuth, peers: Peers
    ) -> None:
        peers.fake.billing_delay = 2.0
        auth = await start_with(start_auth, peers.addresses, billing_timeout=0.3)
        owner = await auth.sign_up()
        await expect_error(
            auth.call("StartTrial", pb.StartTrialRequest(plan="pro"), await auth.as_member(owner)),
            "billing_unavailable",
            grpc.StatusCode.UNAVAILABLE,
        )
        status = await auth.call("GetOnboardingStatus", principal=await auth.as_member(owner))
        assert status.status == "pending"
        assert await auth.scalar("SELECT onboarding_meta::text FROM organizations") == "{}"

    @pytest.mark.parametrize("billing", ["down", "without_the_method"])
    async def test_billing_down_or_without_start_trial_is_billing_unavailable(
        self, start_auth: StartAuth, peers: Peers, billing: str
    ) -> None:
        if billing == "down":
            auth = await start_with(start_auth, {**peers.addresses, "billing": dead()})
        else:
            auth = await start_with(start_auth, {**peers.addresses, "billing": peers.addresses["repos"]})
        owner = await auth.sign_up()
        await expect_error(
            auth.call("StartTrial", pb.StartTrialRequest(plan="pro"), await auth.as_member(owner)),
            "billing_unavailable",
        )

    async def test_a_member_cannot_start_the_trial_and_plans_are_checked(
        self, start_auth: StartAuth, peers: Peers
    ) -> None:
        auth = await start_with(start_auth, peers.addresses)
        owner = await auth.sign_up()
        await expect_error(
            auth.call("StartTrial", pb.StartTrialRequest(plan="gold"), await auth.as_member(owner)),
            "invalid_argument",
        )


class TestCompletion:
    async def test_completing_twice_and_concurrently_publishes_one_fact(self, auth: AuthApi) -> None:
        owner = await auth.sign_up()
        principal = await auth.as_member(owner)
        await asyncio.gather(*(auth.call("CompleteOnboarding", principal=principal) for _ in range(4)))
        status = await auth.call("CompleteOnboarding", principal=principal)
        assert (status.status, status.onboarding_complete) == ("completed", True)
        assert (await auth.outbox_subjects()).count("proliferate.auth.onboarding.completed") == 1

    async def test_a_user_with_one_completed_org_sees_onboarding_complete_in_a_new_pending_org(
        self, auth: AuthApi
    ) -> None:
        owner = await auth.sign_up()
        await auth.call("CompleteOnboarding", principal=await auth.as_member(owner))
        team = await auth.create_org(owner, "New team")
        status = await auth.call("GetOnboardingStatus", principal=await auth.authenticate(owner.token, team))
        assert (status.organization_id, status.status, status.onboarding_complete) == (team, "pending", True)
