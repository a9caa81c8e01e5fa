"""Background work of the repos service: its consumers and periodic jobs.

The outbox relay runs in every worker (kit.runtime); this file lists what is specific.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from proliferate.kit.bus import ConsumerSpec
from proliferate.kit.periodic import PeriodicJob

if TYPE_CHECKING:
    from proliferate.kit.runtime import Runtime
    from proliferate.repos.bootstrap import Settings


def consumers(runtime: Runtime[Settings]) -> list[ConsumerSpec]:
    return []


def jobs(runtime: Runtime[Settings]) -> list[PeriodicJob]:
    return []
