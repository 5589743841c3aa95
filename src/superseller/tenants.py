"""Tenants: the sellers SuperSeller works for."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from superseller.config import DEFAULT_TIMEZONE
from superseller.db.schema import tenants
from superseller.errors import NotFound, UserFacingError
from superseller.jobs.cron import zone
from superseller.limits import TENANT_ID_MAX_LEN, TENANT_NAME_MAX_LEN, LimitError, check_len

# A new tenant's id: a slug that reads the same in a URL, a log line and a shell (README,
# "Tenants"). Ids made before this rule may hold anything: pages URL-encode them anyway.
TENANT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class TenantNotFound(NotFound):
    code = "tenant_not_found"

    def __init__(self, tenant_id: str):
        super().__init__(f"tenant {tenant_id!r} not found")


class TenantExists(UserFacingError):
    status = 409
    code = "tenant_exists"

    def __init__(self, tenant_id: str):
        super().__init__(f"a tenant with id {tenant_id!r} already exists")


def check_tenant_id(tenant_id: str) -> str:
    """A new tenant's id as given, if it is a slug (TENANT_ID_PATTERN) of at most
    TENANT_ID_MAX_LEN characters."""
    check_len(tenant_id, TENANT_ID_MAX_LEN, "the tenant id")
    if not TENANT_ID_PATTERN.fullmatch(tenant_id):
        raise LimitError(
            "the tenant id may hold only letters, digits, '-', '_' and '.', "
            "and must start with a letter or a digit"
        )
    return tenant_id


def create_tenant(
    engine: Engine, name: str, timezone: str = DEFAULT_TIMEZONE, tenant_id: str | None = None
) -> dict[str, Any]:
    zone(timezone)
    check_len(name, TENANT_NAME_MAX_LEN, "the tenant name")
    problems = ["the tenant name cannot be empty"] if not name else []
    if tenant_id == "":
        problems.append("the tenant id cannot be empty (omit it for a generated one)")
    elif tenant_id is not None:
        try:
            check_tenant_id(tenant_id)
        except LimitError as exc:
            problems.append(str(exc))
    if problems:  # each one named: which of the two is wrong, and how
        raise LimitError("; ".join(problems))
    tid = str(uuid.uuid4()) if tenant_id is None else tenant_id
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(tenants).values(
                    id=tid, name=name, timezone=timezone, created_at=datetime.now(UTC)
                )
            )
    except IntegrityError:
        if _exists(engine, tid):  # the primary key: this id is taken
            raise TenantExists(tid) from None
        raise
    return get_tenant(engine, tid)


def _exists(engine: Engine, tenant_id: str) -> bool:
    with engine.connect() as conn:
        return (
            conn.execute(select(tenants.c.id).where(tenants.c.id == tenant_id)).first() is not None
        )


def get_tenant(engine: Engine, tenant_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(select(tenants).where(tenants.c.id == tenant_id)).first()
    if row is None:
        raise TenantNotFound(tenant_id)
    return dict(row._mapping)


def list_tenants(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(tenants).order_by(tenants.c.name))]


def record_outcome(
    engine: Engine,
    tenant_id: str,
    what: str,
    now: datetime,
    error: str | None = None,
    missing_visits: int = 0,
) -> None:
    """Note a sync's or rebuild's success or failure (`what`: 'sync' | 'rebuild'): the
    facts freshness is judged on. A successful sync also notes how many listings' visits
    it could not fetch (`missing_visits`), and counts the syncs in a row that left some."""
    values: dict[str, Any] = (
        {f"last_{what}_ok_at": now}
        if error is None
        else {f"last_{what}_error": error[:2000], f"last_{what}_error_at": now}
    )
    if what == "sync" and error is None:
        values["last_sync_missing_visits"] = missing_visits
        values["last_syncs_partial"] = tenants.c.last_syncs_partial + 1 if missing_visits else 0
    with engine.begin() as conn:
        conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(**values))
