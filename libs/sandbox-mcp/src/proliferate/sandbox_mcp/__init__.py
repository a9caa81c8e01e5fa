"""The in-sandbox runtime: supervisor, sandbox-mcp API, router, `proliferate` CLI, git credential helper."""
