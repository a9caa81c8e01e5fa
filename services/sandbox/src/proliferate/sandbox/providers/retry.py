"""Retries for idempotent provider calls only (§6): find, endpoints, list, terminate, delete.
3 attempts at 1/2/4 s on errors the adapter marked retryable."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from proliferate.sandbox.providers.base import ProviderError

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
