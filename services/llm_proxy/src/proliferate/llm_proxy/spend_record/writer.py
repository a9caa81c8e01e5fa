"""Group commit of spend rows: many requests' in-flight and terminal rows per transaction.

Per request the edge would otherwise open two transactions (in-flight row, finalization);
at hundreds of concurrent streams that is most of the proxy's CPU. The writer collects what
arrives for `linger_s` after the first item (up to `max_batch`) and writes it in one unit of
work; a request finalized within the same batch never writes its in-flight row at all. A
batch that fails is retried item by item, so one bad row cannot hold the others back.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field

from proliferate.kit.db import Database
from proliferate.kit.logs import get_logger, redact
from proliferate.llm_proxy.spend_record.service import SpendRecordDraft, write_batch

log = get_logger("proliferate.llm_proxy.spend_writer")


@dataclass
class _Item:
    draft: SpendRecordDraft
    final: bool
    done: asyncio.Future[int | None] | None = field(default=None)


class SpendWriter:
    def __init__(
        self, db: Database, *, linger_s: float = 0.02, max_batch: int = 500, attempts: int = 5
    ) -> None:
        self.db = db
        self.linger_s = linger_s
        self.max_batch = max_batch
        self.attempts = attempts
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="spend-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    def in_flight(self, draft: SpendRecordDraft) -> None:
        """Queue the `in_flight` row (a snapshot: later changes to `draft` do not apply)."""
        self._queue.put_nowait(_Item(_snapshot(draft), final=False))

    async def finalize(self, draft: SpendRecordDraft) -> int | None:
        """Queue the terminal row; the key's spend after it once committed (None: already final)."""
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(_snapshot(draft), final=True, done=done))
        return await done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(self.linger_s)
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._write(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, batch: list[_Item]) -> None:
        try:
            spend = await self._commit(batch)
        except Exception as exc:
            log.warning("spend_batch_failed", size=len(batch), error=redact(str(exc))[:300])
            for item in batch:
                await self._write_alone(item)
            return
        _resolve(batch, spend)

    async def _write_alone(self, item: _Item) -> None:
        for attempt in range(self.attempts):
            try:
                _resolve([item], await self._commit([item]))
                return
            except Exception as exc:
                log.warning("spend_write_failed", attempt=attempt + 1, error=redact(str(exc))[:300])
                await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
        # The row stays in flight (or absent): the sweeper bills it from the estimate.
        if item.done is not None and not item.done.done():
            item.done.set_exception(RuntimeError("spend record not written"))

    async def _commit(self, batch: list[_Item]) -> dict[uuid.UUID, int]:
        starts = [i.draft for i in batch if not i.final]
        finals = [i.draft for i in batch if i.final]
        async with self.db.unit_of_work() as session:
            return await write_batch(session, starts, finals)


def _snapshot(draft: SpendRecordDraft) -> SpendRecordDraft:
    return SpendRecordDraft(**{name: getattr(draft, name) for name in draft.__dataclass_fields__})


def _resolve(batch: list[_Item], spend: dict[uuid.UUID, int]) -> None:
    for item in batch:
        if item.done is not None and not item.done.done():
            item.done.set_result(spend.get(item.draft.virtual_key_id))
