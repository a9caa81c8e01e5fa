"""The triggers service: the trigger registry, webhook ingestion, polling and cron (`triggers.md`)."""
