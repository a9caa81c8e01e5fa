"""Org blocks: billing pauses an org's LLM traffic; every replica refuses it within 2 s."""
