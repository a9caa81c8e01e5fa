"""The E2B provider, written against the `e2b` SDK behind the thin `E2BPort`."""

from proliferate.sandbox.providers.e2b.port import E2BPort, SdkE2BPort
from proliferate.sandbox.providers.e2b.provider import E2BProvider

__all__ = ["E2BPort", "E2BProvider", "SdkE2BPort"]
