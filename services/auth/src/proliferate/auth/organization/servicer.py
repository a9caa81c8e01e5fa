from __future__ import annotations

from typing import Any

from google.protobuf.empty_pb2 import Empty
from proliferate.auth import serial
from proliferate.auth.organization import service
from proliferate.auth.rpc import ServicerBase
from proliferate.kit.rpc import current_principal
from proliferate.protos.auth.v1 import auth_pb2 as pb


class OrganizationServicer(ServicerBase):
    async def ListMyOrganizations(self, request: Empty, context: Any) -> pb.ListMyOrganizationsResponse:
        async with self.uow() as session:
            found = await service.list_for_user(session, current_principal())
        return pb.ListMyOrganizationsResponse(organizations=[serial.organization(o, r) for o, r in found])

    async def CreateOrganization(
        self, request: pb.CreateOrganizationRequest, context: Any
    ) -> pb.Organization:
        data = service.OrganizationCreate(
            name=request.name, slug=request.slug if request.HasField("slug") else None
        )
        async with self.uow() as session:
            org = await service.create_organization(session, self.ctx.clock, current_principal(), data)
        return serial.organization(org, "owner")

    async def GetOrganization(self, request: pb.OrganizationRef, context: Any) -> pb.Organization:
        async with self.uow() as session:
            org, role = await service.get_visible(session, current_principal(), request.organization_id)
        return serial.organization(org, role)

    async def UpdateOrganization(
        self, request: pb.UpdateOrganizationRequest, context: Any
    ) -> pb.Organization:
        data = service.OrganizationUpdate(
            name=request.name if request.HasField("name") else None,
            slug=request.slug if request.HasField("slug") else None,
            logo_url=request.logo_url if request.HasField("logo_url") else None,
        )
        async with self.uow() as session:
            org, role = await service.update_organization(
                session, current_principal(), request.organization_id, data
            )
        return serial.organization(org, role)

    async def SetAllowedDomains(self, request: pb.SetAllowedDomainsRequest, context: Any) -> pb.Organization:
        async with self.uow() as session:
            org, role = await service.set_allowed_domains(
                session, current_principal(), request.organization_id, list(request.domains)
            )
        return serial.organization(org, role)

    async def GetDomainSuggestions(self, request: Empty, context: Any) -> pb.DomainSuggestions:
        return pb.DomainSuggestions(domains=service.domain_suggestions(current_principal().email))
