"""Login attempts per key (email and client address) per sliding minute."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque


class LoginLimiter:
    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def allow(self, *keys: str) -> bool:
        """Record an attempt; False if any key already used its attempts this minute."""
        now = time.monotonic()
        with self._lock:
            for key in keys:
                q = self._seen[key]
                while q and now - q[0] > 60:
                    q.popleft()
                if len(q) >= self.per_minute:
                    return False
            for key in keys:
                self._seen[key].append(now)
        return True
