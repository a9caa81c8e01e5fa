"""Organizations: the tenant boundary (personal and team), domains, onboarding state."""
