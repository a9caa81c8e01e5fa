"""B8: schemathesis, run against the gateway's OpenAPI document for the auth routes, finds no
5xx and no response that violates the documented schema (positive and negative inputs)."""

from __future__ import annotations

import asyncio
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from proliferate.auth.onboarding.peers import TrialOutcome
from proliferate.devkit.pytest_plugin import register_canary
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ..conftest import StartStack  # noqa: TID252 - the shared test helpers

AUTH_ROUTES = r"^/v1/(auth|orgs|invitations|api-keys|onboarding|admin)(/|$)"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 12, schemathesis.GenerationMode.NEGATIVE: 8}


def fuzz(url: str, headers: dict[str, str]) -> tuple[list[str], int, int]:
    """Run every auth operation in both modes; return the failures, operations and calls made."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json").include(path_regex=AUTH_ROUTES)
    # Signing out would end the credential every later case uses; it is covered by the edge tests.
    schema = schema.exclude(operation_id="sign_out")
    failures: list[str] = []
    operations = calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode, count in EXAMPLES.items():

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=count,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                nonlocal calls
                calls += 1
                case.call_and_validate(base_url=url, headers=headers, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                continue  # nothing about this operation can be made invalid (no parameters, free strings)
            except BaseException as exc:  # each operation reports its own failure (an exception group)
                if isinstance(exc, KeyboardInterrupt | SystemExit):
                    raise
                failures.append(f"{operation.label} ({mode.value}): {type(exc).__name__}: {str(exc)[:600]}")
    return failures, operations, calls


class Peers:
    """Billing, integrations and repos, which have no such methods yet: here they answer."""

    async def start_trial(
        self, *, organization_id: str, plan: str, user_email: str, org_name: str
    ) -> TrialOutcome:
        return TrialOutcome(checkout_url=None)

    async def connected_providers(self, organization_id: str) -> set[str]:
        return {"github"}

    async def list_repos(self, organization_id: str) -> list[tuple[str, str]]:
        return [("r1", "acme/api")]


async def test_schemathesis_finds_no_5xx_and_no_schema_violation_on_the_auth_routes(
    start_stack: StartStack,
) -> None:
    stack = await start_stack(auth_settings={"MAILER": "disabled"}, auth_overrides={"peers": Peers()})
    user = await stack.sign_up()
    key = (await user.client.post("/v1/api-keys", json={"name": "fuzz"})).json()["key"]
    register_canary(key)
    failures, operations, calls = await asyncio.to_thread(fuzz, stack.url(), user.bearer(key))
    assert operations >= 40 and calls >= 10 * operations
    assert not failures, "\n".join(failures)
