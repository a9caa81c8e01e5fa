"""Vendor errors → `ProviderError` (retryable or permanent), and retries for idempotent provider
calls only (§6): find, endpoints, list, terminate, delete — 3 attempts at 1/2/4 s on errors the
adapter marked retryable."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TypeVar

from proliferate.sandbox.providers.base import ProviderError, SandboxGone

T = TypeVar("T")
DELAYS: tuple[float, ...] = (1.0, 2.0, 4.0)


async def retrying(fn: Callable[[], Awaitable[T]], delays: Sequence[float] = DELAYS) -> T:
    attempt = 0
    while True:
        try:
            return await fn()
        except ProviderError as exc:
            if not exc.retryable or attempt >= len(delays) - 1:
                raise
            await asyncio.sleep(delays[attempt])
            attempt += 1


ErrorKinds = Mapping[str, tuple[type[BaseException], ...]]


@contextlib.contextmanager
def vendor_errors(provider: str, operation: str, kinds: ErrorKinds) -> Iterator[None]:
    """The one place a vendor SDK's exceptions become `ProviderError`s. `kinds` sorts them, checked
    in this order: gone, permanent, timeout, retryable, other (anything else of the SDK's)."""
    try:
        yield
    except ProviderError:
        raise
    except kinds["gone"] as exc:
        raise SandboxGone(provider, operation, f"{type(exc).__name__}: {exc}") from None
    except kinds["permanent"] as exc:
        raise ProviderError(provider, operation, f"{type(exc).__name__}: {exc}", retryable=False) from None
    except kinds["timeout"] as exc:
        raise ProviderError(provider, operation, f"timed out: {exc}", retryable=True) from None
    except kinds["retryable"] as exc:
        raise ProviderError(provider, operation, f"{type(exc).__name__}: {exc}", retryable=True) from None
    except kinds["other"] as exc:
        raise ProviderError(provider, operation, f"{type(exc).__name__}: {exc}", retryable=False) from None
