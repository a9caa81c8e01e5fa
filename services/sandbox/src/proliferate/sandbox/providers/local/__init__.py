"""The local provider: sandboxes as directories and process trees on this host."""

from proliferate.sandbox.providers.local.provider import LocalConfig, LocalProvider

__all__ = ["LocalConfig", "LocalProvider"]
