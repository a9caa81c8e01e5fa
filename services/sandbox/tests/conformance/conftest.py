"""Fixtures of the conformance suite (defined in `conformance_support`, importable by the tests)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conformance_support import (  # noqa: F401
    conformance_factory,
    git_server,
    sbx,
    sbx_process,
    tool_gateway,
)
