"""Usage metering: contiguous compute intervals for billing (§5.8)."""
