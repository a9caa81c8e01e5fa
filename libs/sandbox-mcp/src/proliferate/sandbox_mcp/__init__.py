"""The in-sandbox runtime: supervisor, sandbox-mcp API, router, the proliferate CLI and git credential helper."""
