"""The per-seller request slots of the Mercado Livre client: retries go first.

A sync asks for every listing's visits at once, so thousands of first tries wait for the
slots. With a plain FIFO semaphore a request that met a 429 or a 5xx waited again behind
all of them: the range of 500 listings it belonged to could not be checkpointed until
nearly the end of the step, and a crash in between fetched every range again. Here a
waiting retry is handed the next free slot before any waiting first try; each kind keeps
its own first-come, first-served order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class SlotGate:
    def __init__(self, size: int):
        self._free = max(1, size)
        # [retries, first tries]: a freed slot goes to the first waiter of the first
        # non-empty queue.
        self._queues: tuple[deque[asyncio.Future], deque[asyncio.Future]] = (deque(), deque())

    @contextlib.asynccontextmanager
    async def slot(self, retry: bool = False) -> AsyncIterator[None]:
        await self.acquire(retry)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, retry: bool = False) -> None:
        if self._free > 0 and not any(self._queues):
            self._free -= 1
            return
        queue = self._queues[0 if retry else 1]
        waiter = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot just as it was cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            raise

    def release(self) -> None:
        for queue in self._queues:
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the slot passes straight to this waiter
                    return
        self._free += 1

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._queues)
