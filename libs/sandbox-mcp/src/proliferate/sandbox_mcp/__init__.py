"""The in-sandbox runtime: supervisor, sandbox-mcp API, router, CLI, git credential helper."""
