"""The actions service: invocations, risk levels, approvals and grants (`actions.md`)."""
