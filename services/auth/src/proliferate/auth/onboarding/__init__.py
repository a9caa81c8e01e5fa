"""Onboarding of an organization and the trial handoff to billing (auth.md §5.8)."""
