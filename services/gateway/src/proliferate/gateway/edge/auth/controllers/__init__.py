"""The controllers of the auth route group, one module per public prefix."""

from __future__ import annotations

from proliferate.gateway.edge.auth.controllers import (
    admin,
    api_keys,
    invitations,
    onboarding,
    organizations,
    sign_in,
)

ROUTES = [
    *sign_in.ROUTES,
    *organizations.ROUTES,
    *invitations.ROUTES,
    *onboarding.ROUTES,
    *api_keys.ROUTES,
    *admin.ROUTES,
]
