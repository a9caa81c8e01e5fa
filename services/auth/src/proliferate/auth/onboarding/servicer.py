from __future__ import annotations

from typing import Any

from google.protobuf.empty_pb2 import Empty
from proliferate.auth import serial
from proliferate.auth.onboarding import service
from proliferate.auth.rpc import ServicerBase
from proliferate.kit.rpc import current_principal
from proliferate.protos.auth.v1 import auth_pb2 as pb


class OnboardingServicer(ServicerBase):
    async def GetOnboardingStatus(self, request: Empty, context: Any) -> pb.OnboardingStatus:
        async with self.uow() as session:
            view = await service.get_status(session, self.ctx, current_principal())
        return serial.onboarding(view)

    async def SaveOnboardingAnswers(self, request: pb.OnboardingAnswers, context: Any) -> pb.OnboardingStatus:
        answers = service.Answers(
            # A repeated field has no presence: an empty list leaves the saved tools as they are.
            selected_tools=list(request.selected_tools) or None,
            referral_source=request.referral_source if request.HasField("referral_source") else None,
            company_website=request.company_website if request.HasField("company_website") else None,
            team_size=request.team_size if request.HasField("team_size") else None,
        )
        async with self.uow() as session:
            view = await service.save_answers(session, self.ctx, current_principal(), answers)
        return serial.onboarding(view)

    async def StartTrial(self, request: pb.StartTrialRequest, context: Any) -> pb.StartTrialResponse:
        async with self.uow() as session:
            started = await service.start_trial(session, self.ctx, current_principal(), request.plan)
        return pb.StartTrialResponse(status=started.status, checkout_url=started.checkout_url or "")

    async def CompleteOnboarding(self, request: Empty, context: Any) -> pb.OnboardingStatus:
        async with self.uow() as session:
            view = await service.complete_onboarding(session, self.ctx, current_principal())
        return serial.onboarding(view)
