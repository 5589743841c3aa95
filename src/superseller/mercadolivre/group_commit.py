"""Group commit: what concurrent callers of an event loop submit is written in shared
transactions, each caller answered after the transaction that holds its item committed.

One batch is written at a time, off the event loop (one thread hop per batch, not per
call); what arrives meanwhile forms the next batch, so a quiet moment costs one
transaction per item and a burst costs one per batch, with no added wait. When a batch's
write raises, every caller of that batch gets the exception (none is answered as if its
item were written); a batch that failed for a reason other than the database being away
(`retry_alone_unless`) is written again item by item, so one bad item fails alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 200


class GroupCommit(Generic[T, R]):
    def __init__(
        self,
        write: Callable[[list[T]], Sequence[R]],
        retry_alone_unless: tuple[type[BaseException], ...] = (),
        max_batch: int = MAX_BATCH,
    ):
        self._write = write
        self._retry_alone_unless = retry_alone_unless
        self._max_batch = max_batch
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[tuple[T, asyncio.Future]] = []
        self._drainer: asyncio.Task | None = None
        self.batches = 0  # transactions written (for tests and metrics)

    @property
    def waiting(self) -> int:
        """Items submitted and not yet in a batch being written."""
        return len(self._pending)

    async def submit(self, item: T) -> R:
        """`item` written and committed: the write's result for it, or its exception."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first use, or an app served again on a new loop
            self._loop, self._pending, self._drainer = loop, [], None
        future = loop.create_future()
        self._pending.append((item, future))
        if self._drainer is None:
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: len(batch)]
                await self._write_batch(batch)
        finally:
            self._drainer = None
            for _, future in self._pending:  # only when cancelled (the loop is stopping)
                if not future.done():
                    future.set_exception(RuntimeError("the writer stopped"))
            self._pending = []

    async def _write_batch(self, batch: list[tuple[T, asyncio.Future]]) -> None:
        items = [item for item, _ in batch]
        self.batches += 1
        try:
            results = await run_in_threadpool(self._write, items)
        except self._retry_alone_unless as exc:
            return _fail(batch, exc)
        except Exception as exc:
            if len(batch) == 1:
                return _fail(batch, exc)
            for one in batch:  # one bad item must not fail the others
                await self._write_batch([one])
            return None
        except BaseException as exc:  # cancelled: nobody may be left waiting
            _fail(batch, RuntimeError("the writer stopped"))
            raise exc
        if len(results) != len(batch):
            return _fail(batch, RuntimeError("the write answered for another number of items"))
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # a caller that went away stays answered by the write
                future.set_result(result)
        return None


def _fail(batch: list[tuple[object, asyncio.Future]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
