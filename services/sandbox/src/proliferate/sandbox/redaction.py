"""Credential shapes that never leave this service in a log, row, event or error (§7).

`redact()` is `kit.logs.redact` with the sandbox's patterns registered: provider error
messages pass through it before they are logged, stored or returned.
"""

from __future__ import annotations

from proliferate.kit.logs import redact as _kit_redact
from proliferate.kit.logs import register_pattern

PATTERNS = (
    r"sk-ant-[A-Za-z0-9_-]{8,}",
    r"\bsk-[A-Za-z0-9_-]{16,}",
    r"\bpvk_[A-Za-z0-9_-]{8,}",  # llm_proxy virtual keys
    r"\bgh[pousr]_[A-Za-z0-9]{16,}",
    r"github_pat_[A-Za-z0-9_]{16,}",
    r"x-access-token:[^@\s]+@",
    r"\bak-[A-Za-z0-9]{12,}",
    r"\bas-[A-Za-z0-9]{12,}",
    r"\be2b_[A-Za-z0-9]{12,}",
    r"(?<=://)[^/\s:@]+:[^/\s@]{8,}@",  # user:secret@ in URLs
)
for _pattern in PATTERNS:
    register_pattern(_pattern)


def redact(text: str, limit: int = 2000) -> str:
    """`text` without secrets, at most `limit` characters."""
    return _kit_redact(text)[:limit]
