"""Invitations: emailed, single-use, 7-day links into an organization (auth.md §5.6)."""
