"""A thread pool of daemon threads, for running sync handlers.

`concurrent.futures.ThreadPoolExecutor` joins its threads at interpreter exit,
so one handler that ignores cancellation would keep a stopping worker alive
for ever. Daemon threads let the process exit once the job was put back.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Executor, Future


class DaemonThreadPool(Executor):
    def __init__(self, max_workers: int, name: str = "job"):
        self._max = max_workers
        self._name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        self._queue.put((future, fn, args, kwargs))
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._max:
                t = threading.Thread(
                    target=self._work, daemon=True, name=f"{self._name}-{len(self._threads)}"
                )
                self._threads.append(t)
                t.start()
            else:
                self._idle -= 1 if self._idle else 0
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - handed to the awaiting task
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = False, *, cancel_futures: bool = False) -> None:
        for _ in self._threads:
            self._queue.put(None)
