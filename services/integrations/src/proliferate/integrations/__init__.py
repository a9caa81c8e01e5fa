"""The integrations service: OAuth integrations, connectors and org secrets (`integrations.md`)."""
