"""The auth service: users, organizations, members, sign-in, API keys and admin (`auth.md`)."""
