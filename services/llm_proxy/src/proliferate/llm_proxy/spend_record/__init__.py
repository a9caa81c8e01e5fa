"""Spend records: one row per proxied request, finalized once, published as `spend.recorded`."""
