"""Onboarding of the acting organization (auth.md §5.8): status with what the other services
know, answers, the trial handoff to billing, and completion (once per organization)."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from proliferate.auth.context import AuthContext
from proliferate.auth.errors import invalid, not_found
from proliferate.auth.models import Organization
from proliferate.auth.onboarding import events
from proliferate.auth.organization.repository import OrganizationRepository
from proliferate.auth.organization.service import get_visible, require_role
from proliferate.kit.logs import get_logger
from proliferate.kit.principal import Principal
from sqlalchemy.ext.asyncio import AsyncSession

log = get_logger("proliferate.auth.onboarding")

PLANS = ("dev", "pro")
META_LIMIT_BYTES = 8 * 1024


@dataclass(frozen=True)
class Answers:
    selected_tools: list[str] | None = None
    referral_source: str | None = None
    company_website: str | None = None
    team_size: str | None = None


@dataclass(frozen=True)
class OnboardingView:
    organization: Organization
    onboarding_complete: bool
    degraded: bool = False
    has_github_connection: bool | None = None
    has_slack_connection: bool | None = None
    repos: list[tuple[str, str]] | None = field(default=None)


async def _acting(session: AsyncSession, principal: Principal, needed: str | None = None) -> Organization:
    if not principal.organization_id:
        raise not_found("organization")
    if needed:
        org, _ = await require_role(session, principal, principal.organization_id, needed)
    else:
        org, _ = await get_visible(session, principal, principal.organization_id)
    return org


async def get_status(session: AsyncSession, ctx: AuthContext, principal: Principal) -> OnboardingView:
    org = await _acting(session, principal)
    complete = org.onboarding_status == "completed" or await OrganizationRepository(
        session
    ).any_completed_for_user(uuid.UUID(principal.user_id))
    providers, repos = await asyncio.gather(
        ctx.peers.connected_providers(str(org.id)), ctx.peers.list_repos(str(org.id)), return_exceptions=True
    )
    degraded = False
    github = slack = None
    if isinstance(providers, BaseException):
        degraded = True
        log.info(
            "onboarding_dependency_unavailable", dependency="integrations", error=type(providers).__name__
        )
    else:
        github, slack = "github" in providers, "slack" in providers
    if isinstance(repos, BaseException):
        degraded = True
        log.info("onboarding_dependency_unavailable", dependency="repos", error=type(repos).__name__)
        repo_list = None
    else:
        repo_list = repos
    return OnboardingView(org, complete, degraded, github, slack, repo_list)


def _clean_answers(answers: Answers) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if answers.selected_tools is not None:
        tools = [t.strip() for t in answers.selected_tools if t.strip()]
        if len(tools) > 20 or any(len(t) > 64 for t in tools):
            raise invalid("selected_tools", "at most 20 names of at most 64 characters")
        meta["selected_tools"] = tools
    for name, limit in (("referral_source", 200), ("company_website", 2048), ("team_size", 32)):
        value = getattr(answers, name)
        if value is not None:
            if len(value) > limit:
                raise invalid(name, f"at most {limit} characters")
            meta[name] = value.strip()
    return meta


async def save_answers(
    session: AsyncSession, ctx: AuthContext, principal: Principal, answers: Answers
) -> OnboardingView:
    org = await _acting(session, principal)
    meta = _clean_answers(answers)
    if len(json.dumps({**org.onboarding_meta, **meta})) > META_LIMIT_BYTES:
        raise invalid("answers", "onboarding answers are limited to 8 KiB")
    if meta:
        await OrganizationRepository(session).merge_onboarding_meta(org.id, meta)
        await session.refresh(org)
    return await get_status(session, ctx, principal)


@dataclass(frozen=True)
class TrialStarted:
    status: str
    checkout_url: str | None


async def start_trial(
    session: AsyncSession, ctx: AuthContext, principal: Principal, plan: str
) -> TrialStarted:
    if plan not in PLANS:
        raise invalid("plan", f"must be one of {', '.join(PLANS)}")
    org = await _acting(session, principal, "admin")
    if org.onboarding_status == "completed":
        return TrialStarted("completed", None)
    # Billing is idempotent per organization; when it cannot answer nothing changes here.
    outcome = await ctx.peers.start_trial(
        organization_id=str(org.id), plan=plan, user_email=principal.email, org_name=org.name
    )
    repo = OrganizationRepository(session)
    await repo.merge_onboarding_meta(org.id, {"plan": plan})
    if outcome.checkout_url:
        await repo.set_checkout_pending(org.id)
        return TrialStarted("checkout_pending", outcome.checkout_url)
    await _complete(session, ctx, org.id, principal, plan)
    return TrialStarted("completed", None)


async def complete_onboarding(
    session: AsyncSession, ctx: AuthContext, principal: Principal
) -> OnboardingView:
    org = await _acting(session, principal)
    await _complete(session, ctx, org.id, principal, str(org.onboarding_meta.get("plan", "")))
    await session.refresh(org)
    return await get_status(session, ctx, principal)


async def _complete(
    session: AsyncSession, ctx: AuthContext, org_id: uuid.UUID, principal: Principal, plan: str
) -> None:
    # The guarded update lets exactly one call through, so the fact is published once per org.
    if await OrganizationRepository(session).complete_onboarding(org_id, ctx.clock.now()):
        events.onboarding_completed(session, org_id, principal.user_id, plan)
