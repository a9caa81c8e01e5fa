"""Roles and the permission matrix (auth.md §4.5), enforced here from the database, never
from a role a caller claims."""

from __future__ import annotations

from typing import Literal

Role = Literal["owner", "admin", "member"]
ROLES: tuple[Role, ...] = ("owner", "admin", "member")
_RANK = {"member": 0, "admin": 1, "owner": 2}


def at_least(role: str | None, needed: Role) -> bool:
    return role is not None and _RANK.get(role, -1) >= _RANK[needed]
