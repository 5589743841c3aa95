"""What the test run is told by its environment: where PostgreSQL is, whether this is CI."""

from __future__ import annotations

import os

PG_ADMIN_URL = os.environ.get(
    "SUPERSELLER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# In CI a missing PostgreSQL or browser fails the run instead of skipping.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
