"""Rows to JSON-ready dicts."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any


def row_dict(row) -> dict[str, Any]:
    """A result row as a dict, with dates and datetimes as ISO strings."""
    return {
        k: v.isoformat() if isinstance(v, datetime | date) else v for k, v in row._mapping.items()
    }
