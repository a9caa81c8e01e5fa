"""The repos service: repos, configurations, snapshots and secret files (`repos.md`)."""
