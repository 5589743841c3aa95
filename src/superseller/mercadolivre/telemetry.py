"""Process-wide counters of Mercado Livre calls, exposed at /metrics (prometheus-client).

They count what this process did: a worker that syncs exposes them through the
all-in-one server (`serve --with-worker`)."""

from __future__ import annotations

from prometheus_client import Counter

REQUESTS = Counter(
    "superseller_ml_requests",
    "Mercado Livre API responses, by HTTP status ('network' when none came).",
    ["status"],
)
RETRIES = Counter(
    "superseller_ml_retries", "Mercado Livre calls retried after a 429, a 5xx or a network error."
)
RATE_LIMITED = Counter("superseller_ml_rate_limited", "Mercado Livre 429 answers.")
REFRESHES = Counter(
    "superseller_ml_token_refreshes", "OAuth token refreshes, by outcome.", ["outcome"]
)
