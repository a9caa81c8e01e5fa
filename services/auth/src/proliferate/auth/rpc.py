"""What every servicer of AuthService shares: its context, one unit of work per call, and
how refusals whose effects must commit are raised after the commit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

from proliferate.auth.context import AuthContext
from proliferate.auth.errors import Refused
from proliferate.auth.sign_in.service import ClientMeta
from proliferate.protos.auth.v1 import auth_pb2 as pb
from sqlalchemy.ext.asyncio import AsyncSession

T = TypeVar("T")


class ServicerBase:
    def __init__(self, ctx: AuthContext) -> None:
        self.ctx = ctx

    @asynccontextmanager
    async def uow(self) -> AsyncIterator[AsyncSession]:
        async with self.ctx.db.unit_of_work() as session:
            yield session


def accepted(outcome: T | Refused) -> T:
    """The result, or the refusal raised now that its side effects have committed."""
    if isinstance(outcome, Refused):
        raise outcome.error
    return outcome


def client_meta(info: pb.ClientInfo) -> ClientMeta:
    return ClientMeta(ip=info.ip or None, user_agent=info.user_agent[:512] or None)
