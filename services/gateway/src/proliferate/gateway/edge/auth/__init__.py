"""The auth route group (auth.md §4.5): `/v1/auth/*`, `/v1/orgs/*`, `/v1/invitations/*`,
`/v1/api-keys/*`, `/v1/onboarding/*`, `/v1/admin/*`, forwarded to the auth service."""
