"""Signed tokens: access and sandbox JWTs (EdDSA/Ed25519) and the JWKS (auth.md §4.4)."""
