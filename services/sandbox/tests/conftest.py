"""Fixtures of the sandbox service's tests (defined in `sandbox_support`, importable by them)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from sandbox_support import org, org_second, service, service_factory  # noqa: F401
