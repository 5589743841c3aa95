"""Retry delays: exponential back-off with jitter."""

from __future__ import annotations

import random


def retry_delay(
    attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None
) -> float:
    """Seconds to wait before the next attempt, after `attempt` failed attempts.

    The exponential step (base · 2^(attempt-1), capped) is scaled by a jitter
    factor in [0.5, 1.5) so that jobs failing together do not retry together.
    """
    rng = rng or random
    step = min(cap_s, base_s * (2 ** max(0, attempt - 1)))
    return step * (0.5 + rng.random())
