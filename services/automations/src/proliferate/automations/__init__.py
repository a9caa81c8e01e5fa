"""The automations service: automations, the runs pipeline, notifications and artifacts (`automations.md`)."""
