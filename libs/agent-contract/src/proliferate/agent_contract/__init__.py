"""The agent contract library: prompt modes, tool catalog, capability manifest, model registry (agent-contract.md)."""
