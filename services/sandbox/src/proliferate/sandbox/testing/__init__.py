"""Test doubles other services' suites use with the real sandbox service (§8.3)."""
