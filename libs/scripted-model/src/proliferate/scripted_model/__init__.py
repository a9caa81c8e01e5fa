"""A scripted OpenAI- and Anthropic-compatible model server that tests (and make dev) control."""
