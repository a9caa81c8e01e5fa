"""Local development and test support for Proliferate (not shipped in service images)."""
