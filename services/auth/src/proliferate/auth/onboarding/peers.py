"""What onboarding asks other services (auth.md §5.8): billing `StartTrial` (10 s),
integrations `GetConnectionSummary` and repos `ListRepos` (1 s each).

Those methods are not yet in their owners' protos; `GrpcPeers` calls them by path with the
mirrored messages of `proliferate/auth/v1/peers.proto`. A service that does not answer, or
answers UNIMPLEMENTED, is *unavailable*: StartTrial refuses with 503 `billing_unavailable`
and nothing changes; the onboarding status says `degraded` and leaves those fields unset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from proliferate.kit.errors import ErrorKind, RemoteError, Unavailable
from proliferate.kit.rpc import ServiceClients
from proliferate.protos.auth.v1 import peers_pb2

BILLING_TIMEOUT_S = 10.0
SUMMARY_TIMEOUT_S = 1.0
START_TRIAL = "/proliferate.billing.v1.BillingService/StartTrial"
CONNECTION_SUMMARY = "/proliferate.integrations.v1.IntegrationsService/GetConnectionSummary"
LIST_REPOS = "/proliferate.repos.v1.ReposService/ListRepos"
# Refusals billing means (a bad plan, a role); anything else is billing not being available.
_PASSED_THROUGH = frozenset(
    {ErrorKind.INVALID_ARGUMENT, ErrorKind.PERMISSION_DENIED, ErrorKind.FAILED_PRECONDITION}
)


@dataclass(frozen=True)
class TrialOutcome:
    checkout_url: str | None


class Peers(Protocol):
    async def start_trial(
        self, *, organization_id: str, plan: str, user_email: str, org_name: str
    ) -> TrialOutcome: ...

    async def connected_providers(self, organization_id: str) -> set[str]: ...

    async def list_repos(self, organization_id: str) -> list[tuple[str, str]]: ...


class GrpcPeers:
    def __init__(
        self,
        clients: ServiceClients,
        *,
        billing_timeout: float = BILLING_TIMEOUT_S,
        summary_timeout: float = SUMMARY_TIMEOUT_S,
    ) -> None:
        self.clients = clients
        self.billing_timeout = billing_timeout
        self.summary_timeout = summary_timeout

    async def _call(self, target: str, path: str, request: Any, reply_type: Any, timeout: float) -> Any:
        client = self.clients(target)
        method = client.channel.unary_unary(
            path,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=reply_type.FromString,
        )
        return await client.call(method, request, timeout=timeout)

    async def start_trial(
        self, *, organization_id: str, plan: str, user_email: str, org_name: str
    ) -> TrialOutcome:
        request = peers_pb2.StartTrialRequest(
            organization_id=organization_id, plan=plan, user_email=user_email, org_name=org_name
        )
        try:
            reply = await self._call(
                "billing", START_TRIAL, request, peers_pb2.TrialResult, self.billing_timeout
            )
        except RemoteError as exc:
            if exc.kind in _PASSED_THROUGH:
                raise
            raise Unavailable(
                "billing is not available to start the trial; nothing was changed, try again later",
                code="billing_unavailable",
            ) from None
        return TrialOutcome(reply.url if reply.checkout_required and reply.url else None)

    async def connected_providers(self, organization_id: str) -> set[str]:
        request = peers_pb2.GetConnectionSummaryRequest(organization_id=organization_id)
        reply = await self._call(
            "integrations", CONNECTION_SUMMARY, request, peers_pb2.ConnectionSummary, self.summary_timeout
        )
        return set(reply.connected_providers)

    async def list_repos(self, organization_id: str) -> list[tuple[str, str]]:
        request = peers_pb2.ListReposRequest(organization_id=organization_id)
        reply = await self._call(
            "repos", LIST_REPOS, request, peers_pb2.ListReposResponse, self.summary_timeout
        )
        return [(r.id, r.name) for r in reply.repos]
