"""`/v1/onboarding/*`: the acting organization's onboarding and the trial handoff."""

from __future__ import annotations

from litestar import get, post, put
from litestar.params import JSONBody
from proliferate.gateway.edge.auth import schemas as s
from proliferate.gateway.edge.auth import serial
from proliferate.gateway.edge.authentication.dependencies import Auth, Caller
from proliferate.gateway.edge.routes import Tenancy, documented
from proliferate.protos.auth.v1 import auth_pb2 as pb


@get("/v1/onboarding/status", operation_id="get_onboarding_status", **documented(Tenancy.ACTING_ORG))
async def get_onboarding_status(principal: Caller, auth: Auth) -> s.OnboardingStatusOut:
    return serial.onboarding(await auth("GetOnboardingStatus", principal=principal))


@put("/v1/onboarding/answers", operation_id="save_onboarding_answers", **documented(Tenancy.ACTING_ORG))
async def save_onboarding_answers(
    data: JSONBody[s.OnboardingAnswersBody], principal: Caller, auth: Auth
) -> s.OnboardingStatusOut:
    request = pb.OnboardingAnswers(selected_tools=data.selected_tools or [])
    for field in ("referral_source", "company_website", "team_size"):
        value = getattr(data, field)
        if value is not None:
            setattr(request, field, value)
    return serial.onboarding(await auth("SaveOnboardingAnswers", request, principal=principal))


@post(
    "/v1/onboarding/start-trial",
    operation_id="start_trial",
    status_code=200,
    **documented(Tenancy.ACTING_ORG),
)
async def start_trial(data: JSONBody[s.StartTrialBody], principal: Caller, auth: Auth) -> s.TrialOut:
    reply = await auth("StartTrial", pb.StartTrialRequest(plan=data.plan), principal=principal)
    return s.TrialOut(status=reply.status, checkout_url=serial.opt(reply.checkout_url))


@post(
    "/v1/onboarding/complete",
    operation_id="complete_onboarding",
    status_code=200,
    **documented(Tenancy.ACTING_ORG),
)
async def complete_onboarding(principal: Caller, auth: Auth) -> s.OnboardingStatusOut:
    return serial.onboarding(await auth("CompleteOnboarding", principal=principal))


ROUTES = [get_onboarding_status, save_onboarding_answers, start_trial, complete_onboarding]
