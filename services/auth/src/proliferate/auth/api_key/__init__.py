"""Org-bound API keys: shown once, stored hashed, revocable (auth.md §5.9)."""
