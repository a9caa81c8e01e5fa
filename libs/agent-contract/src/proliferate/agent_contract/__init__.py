"""The agent contract library: prompt modes, tools, the capability manifest, models.

Spec: `agent-contract.md`.
"""
