"""The billing service: metering, credits, gating, trials and org pause (`billing.md`)."""
