"""Is a tenant's data fresh? If not, why — and whether a job can heal it.

First, the tenant's connection to Mercado Livre (`connection`):

- `not_connected` ("Não conectado"): no account was ever connected. Nothing can
  be synced; no job can help until the seller connects (not an alarm).
- `reauth_required` ("Desatualizado", reason `reauth_required`): the refresh token
  was revoked or refused (`invalid_grant`); only the seller, reconnecting, can heal it.
- `connected`.

A connected tenant whose first import (its first sync: none has succeeded yet) is queued
or running is `importing` ("Importando", reason `importing`): a new seller, not an alarm,
for as long as that sync was queued less than the freshness objective (26 h) ago; after
that it is `stale`, reason `importing` ("Importação em andamento desde ..."): an import
that long is stuck or keeps failing. A first import that failed for good (no sync left
queued) is `stale`, `never_synced`, as before.

A connected tenant is `stale` ("Desatualizado") when any of these holds, each giving
a reason: no sync has succeeded within the freshness objective; the last rebuild
failed after the last good one; or the metrics stop before yesterday (local).
Otherwise it is `partial` ("Parcial", reason `visits_missing`) while the last
successful sync left listings whose visits it could not fetch (both passes ran out of
tries: a 429 storm, a 5xx burst), so their visits and conversion lack days; a later
sync that fetches them all makes it `ok`. The status is the connection's when it is
not `connected`. A sync or rebuild can heal `stale`, and `partial` once (`healable`):
the self-heal re-runs the sync that left the gap, not every hour after it (a listing
Mercado Livre keeps failing would get a sync an hour); the nightly sync retries anyway.

Beside the status, `lastSyncFailed`: the store's last sync that ended (completed or
failed; a cancel is an operator's, not a failure) failed for good, all its attempts spent,
after the last successful one. The status stays what the last good sync makes it (`ok`
within the objective: the numbers are as fresh as they say), but the seller is told that
the update they may expect did not happen, why (the refresh's reason, `progress.SYNC_FAILED`),
how old the numbers are and when the next scheduled sync tries again. A sync still retrying
(pending, attempts left) is not failed yet; a later success clears it. Only for a connected
store that has synced before (otherwise the status already says what is wrong).

Item errors (a listing's details refused inside a multiget that answered: a deleted or
forbidden item) are not a gap of this kind: they are the item's own lasting answer, no
retry fetches them, and a stored listing's visits are still fetched. A multiget that
runs out of tries fails the whole sync, which `stale` already says.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from superseller.db.schema import (
    job_schedules,
    jobs,
    listing_metrics_daily,
    marketplace_accounts,
    ml_notifications,
    tenants,
)
from superseller.jobs.cron import zone
from superseller.mercadolivre.account_state import first_import_job
from superseller.mercadolivre.progress import SYNC_FAILED
from superseller.ptbr import plural

OBJECTIVE = timedelta(hours=26)  # a daily sync plus slack
SYNC_TYPE = "sync_mercadolivre"  # registered by the Mercado Livre feature, when installed
# The promise: by this local hour every seller's yesterday is complete, i.e. a sync
# finished after the local midnight that ended it. Before it, last night's sync may
# still be on its way; after it, a sync from yesterday (however recent) leaves
# yesterday's figures partial, and the status says so.
MORNING = time(6, 0)
# Mercado Livre notifications count as flowing ("tempo real") while the last one the
# webhook received for the tenant arrived within this window; after it, the status says
# since when they stopped. Only deliveries count: a notification recovered from
# `/missed_feeds` (stored with `attempts` 0, see notification_jobs.RECOVERED_ATTEMPTS)
# is evidence the webhook missed it, so one sent after the last delivery means stopped.
REALTIME_WINDOW = timedelta(hours=1)
RECOVERED_ATTEMPTS = 0
NOT_CONNECTED, REAUTH_REQUIRED, CONNECTED = "not_connected", "reauth_required", "connected"
OK, STALE, PARTIAL, IMPORTING = "ok", "stale", "partial", "importing"
LABELS = {
    OK: "Atualizado",
    IMPORTING: "Importando",
    PARTIAL: "Parcial",
    STALE: "Desatualizado",
    REAUTH_REQUIRED: "Desatualizado",
    NOT_CONNECTED: "Não conectado",
}
# States that ask for someone's attention (the `freshness` command exits 1 on them).
# `partial` is reported, not alarmed on: the next sync retries the missing visits
# (Prometheus has its own gauge, `superseller_tenant_partial`, to alert on one that lasts);
# nor is `importing`: a new seller's first import within the objective.
ALARMING = (STALE, REAUTH_REQUIRED)
# Not stale: synced on time (a `partial` tenant's sync ran; it left a gap, said apart), or
# a first import under way for less than the objective.
ON_TIME = (OK, PARTIAL, IMPORTING)
# The self-heal re-runs the sync of a `partial` tenant this many times in a row, no more.
PARTIAL_HEALS = 1


def healable(f: dict[str, Any]) -> bool:
    """A sync or rebuild can bring this tenant back: it is stale and connected, or partial
    after its first sync in a row that left visits missing (a sync has not retried yet)."""
    if f["status"] == PARTIAL:
        return f["partialSyncs"] <= PARTIAL_HEALS
    return f["status"] == STALE


def _missing_visits(n: int) -> dict[str, str]:
    return {
        "code": "visits_missing",
        "message": (
            f"Faltam as visitas de {plural(n, 'anúncio', 'anúncios')} (o Mercado Livre não "
            "respondeu na última sincronização); a próxima sincronização busca de novo"
        ),
    }


def connection_state(statuses: list[str]) -> str:
    """The tenant's Mercado Livre connection from its accounts' statuses."""
    if not statuses:
        return NOT_CONNECTED
    if REAUTH_REQUIRED in statuses:
        return REAUTH_REQUIRED
    return CONNECTED


def _local(dt: datetime, tz: str) -> str:
    return dt.astimezone(zone(tz)).strftime("%d/%m às %H:%M")


def connection_of(engine: Engine, tenant_id: str) -> str:
    """`connected`, `reauth_required` or `not_connected` (see the module's doc)."""
    with engine.connect() as conn:
        statuses = (
            conn.execute(
                select(marketplace_accounts.c.status).where(
                    marketplace_accounts.c.tenant_id == tenant_id
                )
            )
            .scalars()
            .all()
        )
    return connection_state(list(statuses))


def tenant_freshness(
    engine: Engine, tenant_id: str, now: datetime, objective: timedelta = OBJECTIVE
) -> dict[str, Any]:
    with engine.connect() as conn:
        t = conn.execute(select(tenants).where(tenants.c.id == tenant_id)).one()
        max_date = conn.execute(
            select(func.max(listing_metrics_daily.c.date)).where(
                listing_metrics_daily.c.tenant_id == tenant_id
            )
        ).scalar()
        notes = _notes(conn, tenant_id)
    if isinstance(max_date, str):
        max_date = date.fromisoformat(max_date)
    today = now.astimezone(zone(t.timezone)).date()
    connection = connection_of(engine, tenant_id)
    reasons: list[dict[str, str]] = []
    if connection == REAUTH_REQUIRED:
        reasons.append(
            {"code": "reauth_required", "message": "Reconecte sua conta do Mercado Livre"}
        )
    elif connection == NOT_CONNECTED:
        reasons.append({"code": "not_connected", "message": "Conecte sua conta do Mercado Livre"})
    importing = (
        _first_import_since(engine, tenant_id)
        if connection == CONNECTED and t.last_sync_ok_at is None
        else None
    )
    if importing is not None:
        reasons.append(
            {
                "code": "importing",
                "message": (
                    "Primeira importação em andamento"
                    if now - importing <= objective
                    else f"Importação em andamento desde {_local(importing, t.timezone)}"
                ),
            }
        )
    elif t.last_sync_ok_at is None:
        reasons.append({"code": "never_synced", "message": "Nenhuma sincronização concluída"})
    elif now - t.last_sync_ok_at > objective:
        reasons.append(
            {
                "code": "sync_old",
                "message": f"Sem sincronização desde {_local(t.last_sync_ok_at, t.timezone)}",
            }
        )
    elif now.astimezone(zone(t.timezone)).time() >= MORNING and t.last_sync_ok_at < (
        datetime.combine(today, time(0), zone(t.timezone))
    ):
        reasons.append(
            {
                "code": "yesterday_incomplete",
                "message": (
                    "Ontem ainda não está completo: última sincronização em "
                    f"{_local(t.last_sync_ok_at, t.timezone)}"
                ),
            }
        )
    if t.last_rebuild_error_at and (
        t.last_rebuild_ok_at is None or t.last_rebuild_error_at > t.last_rebuild_ok_at
    ):
        reasons.append(
            {"code": "rebuild_failed", "message": "A última atualização das métricas falhou"}
        )
    if max_date is None or max_date < today - timedelta(days=1):
        since = max_date.strftime("%d/%m") if max_date else None
        reasons.append(
            {
                "code": "metrics_behind",
                "message": f"Métricas só até {since}" if since else "Ainda não há métricas",
            }
        )
    missing = (t.last_sync_missing_visits or 0) if t.last_sync_ok_at else 0
    status = connection if connection != CONNECTED else STALE if reasons else OK
    if importing is not None and now - importing <= objective:
        status = IMPORTING  # its metrics and sync age are the import's to fill: no alarm
    if missing:
        reasons.append(_missing_visits(missing))
        status = PARTIAL if status == OK else status
    live = realtime(notes["delivered"], now, t.timezone, connection, notes["missed"])
    label = LABELS[status]
    updated = t.last_rebuild_ok_at
    applied = _aware(notes["applied"]) if live["state"] == "flowing" else None
    if applied and (updated is None or applied > updated):
        updated = applied  # notifications brought the numbers this far since the rebuild
    if status == OK and live["state"] == "flowing":
        label = f"{label} · tempo real"
    failed = (
        last_sync_failed(engine, t, now, _local(updated, t.timezone) if updated else None)
        if connection == CONNECTED and t.last_sync_ok_at is not None
        else None
    )
    return {
        "tenantId": tenant_id,
        "status": status,
        "label": label,
        "realtime": live,
        "connection": connection,
        "reasons": reasons,
        "missingVisits": missing,
        "partialSyncs": t.last_syncs_partial if missing else 0,
        "lastSyncAt": t.last_sync_ok_at.isoformat() if t.last_sync_ok_at else None,
        "lastRebuildAt": t.last_rebuild_ok_at.isoformat() if t.last_rebuild_ok_at else None,
        "maxDate": max_date.isoformat() if max_date else None,
        "updatedUntil": _local(updated, t.timezone) if updated else None,
        "lastSyncFailed": failed,
    }


def last_sync_failed(
    engine: Engine, tenant, now: datetime, numbers_of: str | None
) -> dict[str, Any] | None:
    """`{at, reason, nextSyncAt, message}` when the tenant's last sync that ended failed
    for good after its last success (see the module's doc), else None. `numbers_of`: how
    fresh the numbers are, in words ("07/12 às 18:28"; the last sync's time when None)."""
    with engine.connect() as conn:
        failed_at, completed_at = conn.execute(
            select(
                func.max(jobs.c.finished_at).filter(jobs.c.status == "failed"),
                func.max(jobs.c.finished_at).filter(jobs.c.status == "completed"),
            ).where(
                jobs.c.tenant_id == tenant.id,
                jobs.c.type == SYNC_TYPE,
                jobs.c.status.in_(("failed", "completed")),
            )
        ).one()
        failed_at, completed_at = _aware(failed_at), _aware(completed_at)
        if failed_at is None or failed_at <= tenant.last_sync_ok_at:
            return None
        if completed_at is not None and completed_at >= failed_at:
            return None
        next_at = _next_sync(conn, tenant.id)
    tz = tenant.timezone
    numbers_of = numbers_of or _local(tenant.last_sync_ok_at, tz)
    again = (
        f"Tentaremos de novo {_when(next_at, now, tz)} — ou clique em Atualizar dados."
        if next_at is not None
        else "Clique em Atualizar dados para tentar de novo."
    )
    reason = SYNC_FAILED[:1].lower() + SYNC_FAILED[1:]
    return {
        "at": failed_at.isoformat(),
        "reason": SYNC_FAILED,
        "nextSyncAt": next_at.isoformat() if next_at else None,
        "message": (
            f"A última atualização, {_when(failed_at, now, tz)}, não foi concluída: {reason}. "
            f"Os números são de {numbers_of}. {again}"
        ),
    }


def _next_sync(conn, tenant_id: str) -> datetime | None:
    """When the next scheduled sync that covers the tenant (its own, or the nightly one
    of every store) runs, or None when no enabled schedule does."""
    rows = conn.execute(
        select(job_schedules.c.payload, job_schedules.c.next_run_at).where(
            job_schedules.c.job_type == SYNC_TYPE,
            job_schedules.c.enabled,
            job_schedules.c.next_run_at.is_not(None),
        )
    ).all()
    times = [
        _aware(r.next_run_at)
        for r in rows
        if (r.payload or {}).get("tenantId") in ("all", tenant_id)
    ]
    return min(times, default=None)


def _when(dt: datetime, now: datetime, tz: str) -> str:
    """ "às 18:41" today, "amanhã às 02:00", "ontem às 23:10", else "em 05/12 às 18:41"
    (in the tenant's time)."""
    day, today = dt.astimezone(zone(tz)).date(), now.astimezone(zone(tz)).date()
    hour = dt.astimezone(zone(tz)).strftime("%H:%M")
    prefix = {0: "", 1: "amanhã ", -1: "ontem "}.get((day - today).days)
    return f"{prefix}às {hour}" if prefix is not None else f"em {_local(dt, tz)}"


def _first_import_since(engine: Engine, tenant_id: str) -> datetime | None:
    """When the tenant's sync still queued or running was queued (the first import, when
    none has succeeded yet), or None when none is."""
    job_id = first_import_job(engine, tenant_id)
    if job_id is None:
        return None
    with engine.connect() as conn:
        queued = conn.execute(select(jobs.c.created_at).where(jobs.c.id == job_id)).scalar()
    return _aware(queued)


def _aware(v: Any) -> datetime | None:
    if v is None:
        return None
    if isinstance(v, str):  # SQLite aggregates come back as text
        v = datetime.fromisoformat(v)
    return v if v.tzinfo else v.replace(tzinfo=UTC)


def _notes(conn, tenant_id: str) -> dict[str, Any]:
    """The tenant's last webhook delivery, the newest notification recovered from
    `/missed_feeds` (by when Mercado Livre sent it), and when a notification was last
    applied to the numbers."""
    n = ml_notifications
    recovered = n.c.attempts == RECOVERED_ATTEMPTS
    delivered, missed, applied = conn.execute(
        select(
            func.max(n.c.received_at).filter(~recovered | n.c.attempts.is_(None)),
            func.max(func.coalesce(n.c.sent_at, n.c.received_at)).filter(recovered),
            func.max(n.c.processed_at).filter(n.c.outcome == "processed"),
        ).where(n.c.tenant_id == tenant_id)
    ).one()
    return {"delivered": _aware(delivered), "missed": _aware(missed), "applied": applied}


def live_until(engine: Engine, tenant_id: str, now: datetime) -> datetime | None:
    """While notifications flow, the last time one was applied to the numbers (what moves
    "Hoje até" and "Atualizado até" between syncs); None otherwise."""
    with engine.connect() as conn:
        notes = _notes(conn, tenant_id)
    live = realtime(
        notes["delivered"], now, "UTC", connection_of(engine, tenant_id), notes["missed"]
    )
    return _aware(notes["applied"]) if live["state"] == "flowing" else None


def realtime(
    last: datetime | None,
    now: datetime,
    tz: str,
    connection: str,
    missed: datetime | None = None,
) -> dict[str, Any]:
    """Are Mercado Livre notifications for the tenant flowing ("tempo real")? `never`
    (none ever came: the daily sync alone keeps the numbers), `flowing`, or `stopped`
    (with since when, in the tenant's time). `last` is the last webhook delivery;
    `missed`, when ML sent the newest one the webhook never got (recovered later): if it
    is after the last delivery, deliveries are failing now."""
    last, missed = _aware(last), _aware(missed)
    if last is None:
        if missed is None:
            return {"state": "never", "lastAt": None, "message": None}
        return {"state": "stopped", "lastAt": None, "message": "Tempo real parado"}
    failing = missed is not None and missed > last
    if connection == CONNECTED and now - last <= REALTIME_WINDOW and not failing:
        return {"state": "flowing", "lastAt": last.isoformat(), "message": "Tempo real"}
    return {
        "state": "stopped",
        "lastAt": last.isoformat(),
        "message": f"Tempo real parado desde {_local(last, tz)}",
    }


def all_freshness(engine: Engine, now: datetime) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        ids = (
            conn.execute(
                select(tenants.c.id).where(tenants.c.status == "active").order_by(tenants.c.name)
            )
            .scalars()
            .all()
        )
    return [tenant_freshness(engine, tid, now) for tid in ids]
