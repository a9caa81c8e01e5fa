"""Compute providers behind one interface (`base.SandboxProvider`): local, Modal, E2B."""
