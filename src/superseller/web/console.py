"""The operator console (admins): Jobs (filters, counts, keyset pages, live updates, bulk
actions, engine pause/resume), a job's detail page, Agendamentos, Auditoria, Gráficos.

Pages read through the same functions as the admin API; buttons call the admin API from
the browser (`/static/console/console.js`), after a confirmation, and say what happened.
The pause banner on every page comes from `engine_state()`, a template global.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from superseller import logs
from superseller.config import DEFAULT_TIMEZONE
from superseller.http.deps import MAX_ID, services
from superseller.http.errors import ApiError
from superseller.http.job_filters import job_filter, moment, next_page
from superseller.jobs import audit, pause, stats
from superseller.jobs.admin import (
    COUNT_CAP,
    JOB_STATES,
    JobAdmin,
    JobFilter,
    is_permanent,
    schedule_views,
)
from superseller.jobs.cron import zone
from superseller.jobs.errors import JobNotFound
from superseller.jobs.scheduler import Scheduler
from superseller.tenants import list_tenants
from superseller.users.accounts import User
from superseller.web.format import number, when
from superseller.web.pages import PageMessage, PageRoute, page_user, templates
from superseller.web.pages import _render as render_page

HERE = Path(__file__).parent
router = APIRouter(include_in_schema=False, route_class=PageRoute)

STATE_PT = {
    "pending": "na fila",
    "running": "executando",
    "completed": "concluído",
    "failed": "falhou",
    "cancelled": "cancelado",
}
ATTEMPT_PT = {
    "success": "sucesso",
    "error": "erro",
    "timeout": "tempo esgotado",
    "cancelled": "cancelado",
    "lost": "perdido (worker sumiu)",
    "interrupted": "interrompido (desligamento)",
    "disconnected": "interrompido (banco de dados caiu; não contou)",
}
OUTCOME_PT = {
    "enqueued": "enfileirado",
    "skipped": "pulado",
    "missed": "perdido",
    "backfilled": "reprocessado",
}
ACTION_PT = {
    "job.create": "criou o job",
    "job.join": "juntou-se ao job",  # an internal call with Idempotency-Key that joined it
    "job.cancel": "cancelou o job",
    "job.retry": "mandou tentar de novo o job",
    "job.execute": "executou agora o job",
    "job.run_again": "executou de novo o job",
    "job.move": "mudou de fila o job",
    "jobs.cancel": "cancelou em lote",
    "jobs.retry": "mandou tentar de novo em lote",
    "schedule.run_now": "executou agora o agendamento",
    "schedule.enqueue": "enfileirou a execução agendada de",
    "schedule.skip": "pulou a execução agendada de",
    "schedule.miss": "perdeu a execução agendada de",
    "schedule.update": "alterou o agendamento",
    "schedule.backfill": "reprocessou um período do agendamento",
    "engine.pause": "pausou o motor de jobs",
    "engine.resume": "retomou o motor de jobs",
    "queue.pause": "pausou a fila",
    "queue.resume": "retomou a fila",
}
MISFIRE_PT = {"latest": "só a mais recente", "all": "todas", "skip": "nenhuma"}
OVERLAP_PT = {"skip": "pular", "queue_one": "enfileirar uma", "allow": "permitir"}
_SECRET_KEY = re.compile(r"(?i)token|secret|password|senha|api[_-]?key|authorization|credential")


def redacted(value: Any) -> Any:
    """A payload or result with the values of secret-looking keys hidden."""
    if isinstance(value, dict):
        return {
            k: "[REDACTED]" if _SECRET_KEY.search(str(k)) else redacted(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def pretty(value: Any) -> str:
    return logs.redact(json.dumps(redacted(value), indent=2, ensure_ascii=False, default=str))


# Attempts cut off before the worker could write what they did: their `records_processed`
# is a placeholder 0, not a count (the worker vanished, or was stopped mid-run).
RECORDS_UNKNOWN = frozenset({"lost", "interrupted"})


def records(attempt: dict) -> str:
    """An attempt's records, or "desconhecido" when it was cut off before it could say."""
    if attempt["status"] in RECORDS_UNKNOWN and not attempt["records_processed"]:
        return "desconhecido"
    return number(attempt["records_processed"])


def ago(then: str | datetime | None, now: datetime) -> str:
    """How long ago, in pt-BR ("há 12 s", "há 5 min", "há 2 h", "há 3 dias")."""
    if then is None:
        return "—"
    at = _aware(then) if isinstance(then, str) else then
    s = int((now - at).total_seconds())
    if s < 1:
        return "agora"
    if s < 60:
        return f"há {s} s"
    if s < 3600:
        return f"há {s // 60} min"
    if s < 86400:
        return f"há {s // 3600} h"
    return f"há {s // 86400} {'dia' if s < 2 * 86400 else 'dias'}"


def seconds(ms: int | None) -> str:
    if ms is None:
        return "—"
    return f"{number(ms)} ms" if ms < 1000 else f"{number(ms / 1000, 1)} s"


def engine_state(request: Request) -> dict[str, Any]:
    """The pause state for the banner (any page; never fails a page)."""
    try:
        return pause.state(services(request).engine)
    except Exception:  # noqa: BLE001 - a page without its banner beats no page
        return {"paused": False, "pausedQueues": []}


templates.env.filters.update(
    state_pt=lambda s: STATE_PT.get(s, s),
    attempt_pt=lambda s: ATTEMPT_PT.get(s, s),
    outcome_pt=lambda s: OUTCOME_PT.get(s, s),
    action_pt=lambda s: ACTION_PT.get(s, s),
    misfire_pt=lambda s: MISFIRE_PT.get(s, s),
    overlap_pt=lambda s: OVERLAP_PT.get(s, s),
    pretty=pretty,
    compact=lambda v: logs.redact(json.dumps(redacted(v), ensure_ascii=False, default=str)),
    seconds=seconds,
    records=records,
    when_full=lambda v: when(v) if v is None else _when_full(v),
)
templates.env.globals["engine_state"] = engine_state


def _when_full(value: str | datetime) -> str:
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    return dt.astimezone(zone(DEFAULT_TIMEZONE)).strftime("%d/%m/%Y %H:%M:%S")


def _admin_user(request: Request) -> User:
    user = page_user(request)
    if user.role != "admin":
        raise PageMessage(403, user, "Acesso restrito", "Esta página é só para administradores.")
    return user


def _render(request: Request, name: str, **context) -> HTMLResponse:
    # The logout form's CSRF token and the CSP nonce of inline scripts, as on every page.
    return render_page(request, name, **{"page": "jobs", **context})


CONSOLE_FILES = {"console.js": "application/javascript", "console.css": "text/css"}


@router.get("/static/console/{name}")
def console_asset(name: str) -> FileResponse:
    if name not in CONSOLE_FILES:
        raise StarletteHTTPException(404)  # the 404 page, as for every unknown path
    return FileResponse(HERE / "static" / name, media_type=CONSOLE_FILES[name])


# -- Jobs ----------------------------------------------------------------------
FILTER_KEYS = (
    "state",
    "type",
    "tenantId",
    "queue",
    "createdFrom",
    "createdTo",
    "finishedFrom",
    "finishedTo",
)


FILTER_LABELS = {
    "createdFrom": "Criado de",
    "createdTo": "Criado até",
    "finishedFrom": "Terminou de",
    "finishedTo": "Terminou até",
    "beforeFinished": "página seguinte",
}


def _filter_problem(exc: Exception) -> str:
    """A refused filter in Portuguese: the field's label and what it must be."""
    fields = getattr(exc, "fields", None)
    if not fields:
        return str(exc)  # already Portuguese (state, type) or unexpected
    name = fields[0]["field"]
    label = FILTER_LABELS.get(name, name)
    if "range" in fields[0]["problem"]:
        return f"“{label}” está fora do intervalo aceito."
    if "before the start" in fields[0]["problem"]:
        start = "Criado de" if name == "createdTo" else "Terminou de"
        return f"a data inicial é depois da final (“{start}” depois de “{label}”)."
    return f"“{label}” precisa ser uma data (AAAA-MM-DD)."


@router.get("/jobs", response_class=HTMLResponse)
def jobs_page(
    request: Request,
    sort: Literal["created", "finished"] = "created",
    before: int | None = Query(None, ge=1, le=MAX_ID),
    beforeFinished: str | None = Query(None, max_length=40),
    parcial: bool = False,
):
    user = _admin_user(request)
    svc = services(request)
    try:
        if any("\x00" in request.query_params.get(k, "") for k in FILTER_KEYS):
            raise ValueError("um campo tem um caractere nulo (%00)")
        f = job_filter(**{k: request.query_params.get(k) or None for k in FILTER_KEYS})
        if f.status is not None and f.status not in JOB_STATES:
            raise ValueError(f"estado desconhecido: {f.status}")
        if f.job_type is not None and f.job_type not in svc.registry:
            raise ValueError(f"tipo de job desconhecido: {f.job_type}")
        before_finished = moment(beforeFinished, "beforeFinished")
        error = None
    except (ApiError, ValueError) as exc:  # a bad filter: say which, in our words; list nothing
        f, before_finished, error = JobFilter(), None, _filter_problem(exc)
    admin = JobAdmin(svc.engine, svc.clock)
    limit = 50
    rows = (
        []
        if error
        else admin.search(
            f, sort=sort, limit=limit, before_id=before, before_finished=before_finished
        )
    )
    now = svc.clock.now()
    for r in rows:
        r["permanent"] = is_permanent(r)
        # Pending for later (a retry's backoff, a run planned for tomorrow): not stuck.
        r["later"] = r["status"] == "pending" and _aware(r["run_at"]) > now
    params = {k: request.query_params.get(k) for k in FILTER_KEYS if request.query_params.get(k)}
    nxt = next_page(rows, limit, sort)
    context = dict(
        user=user,
        rows=rows,
        filters=params,
        sort=sort,
        first_page=before is None,
        next_query={**params, "sort": sort, **{k: v for k, v in (nxt or {}).items() if v}}
        if nxt
        else None,
        error=error,
    )
    if parcial:
        return _render(request, "console/_job_rows.html", **context)
    # A refused filter shows no counts: the unfiltered totals beside its empty list mislead.
    counts = None if error else admin.counts(f, COUNT_CAP)
    # Bulk retry is offered only when it would re-queue something (permanent failures stay).
    retryable = admin.retryable(f)["count"] if params and not error else 0
    queue_counts = stats.queue_counts(svc.engine, svc.clock)
    return _render(
        request,
        "jobs.html",
        **context,
        counts=counts,
        retryable=retryable,
        latest_id=None if error else admin.latest_id(f),
        types=svc.registry.names(),
        queues=sorted(
            {*queue_counts["byQueue"], *(svc.registry.get(n).queue for n in svc.registry.names())}
        ),
        paused_queues={q["queue"]: q for q in engine_state(request)["pausedQueues"]},
        tenants=list_tenants(svc.engine),
        states=JOB_STATES,
        type_stats=stats.job_type_stats(svc.engine, svc.clock)["types"],
        queue_counts=queue_counts,
    )


def _aware(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _history(job: dict, attempts: list[dict]) -> list[dict]:
    """What happened to the job, in order: created, each attempt's start and end, the end."""
    events = [{"at": job["created_at"], "what": "criado", "state": "pending"}]
    for n, a in enumerate(attempts, 1):
        events.append({"at": a["started_at"], "what": f"tentativa {n} começou", "state": "running"})
        events.append(
            {
                "at": a["completed_at"],
                "what": f"tentativa {n}: {ATTEMPT_PT.get(a['status'], a['status'])}",
                "state": a["status"],
            }
        )
    if job["status"] == "running" and job["started_at"]:
        n = len(attempts) + 1
        worker = job["worker_id"] or "?"
        events.append(
            {
                "at": job["started_at"],
                "what": f"tentativa {n} começou ({worker})",
                "state": "running",
            }
        )
    if job["status"] == "cancelled" and job["finished_at"]:
        if not attempts or attempts[-1]["status"] != "cancelled":
            events.append({"at": job["finished_at"], "what": "cancelado", "state": "cancelled"})
    elif job["status"] == "pending" and attempts:
        events.append({"at": job["run_at"], "what": "nova tentativa marcada", "state": "pending"})
    return sorted(events, key=lambda e: e["at"] or "")


def _current_run(job: dict, attempts: list[dict], now: datetime) -> dict | None:
    """The attempt a running job is in now (it has no `job_logs` row until it ends): its
    number, the worker that holds it, when it started and when that worker last said so."""
    if job["status"] != "running":
        return None
    return {
        "run": len(attempts) + 1,  # the attempts table's numbering (every run)
        "worker": job["worker_id"] or "—",
        "started_at": job["started_at"],
        "started_ago": ago(job["started_at"], now),
        "heartbeat_at": job["heartbeat_at"],
        "heartbeat_ago": ago(job["heartbeat_at"], now),
    }


@router.get("/jobs/agendamentos", response_class=HTMLResponse)
def schedules_page(request: Request):
    user = _admin_user(request)
    svc = services(request)
    schedules = schedule_views(svc.engine, svc.registry, svc.clock)
    scheduler = Scheduler(svc.engine, svc.registry, clock=svc.clock)
    ledger = {s["name"]: scheduler.occurrences(s["name"], limit=20) for s in schedules}
    today = svc.clock.now().date()
    return _render(
        request,
        "console/schedules.html",
        user=user,
        schedules=schedules,
        ledger=ledger,
        today=today.isoformat(),
        week_ago=(today - timedelta(days=7)).isoformat(),
        misfire=MISFIRE_PT,
        overlap=OVERLAP_PT,
    )


# What the audit trail records actions on, as the Auditoria filter offers them.
AUDIT_TARGETS = {
    "job": "um job",
    "jobs": "jobs em lote",
    "schedule": "agendamento",
    "engine": "motor",
    "queue": "fila",
}


@router.get("/jobs/auditoria", response_class=HTMLResponse)
def audit_page(
    request: Request,
    actor: str | None = Query(None, max_length=254),
    targetType: str | None = Query(None, max_length=40),
    before: int | None = Query(None, ge=1, le=MAX_ID),
):
    user = _admin_user(request)
    limit = 100
    # The form sends every field: an empty one means "no filter", as on the Jobs page.
    error = None
    if "\x00" in (actor or ""):  # PostgreSQL refuses it in a text value
        error = "“Quem” tem um caractere nulo (%00)"
    elif targetType and targetType not in AUDIT_TARGETS:
        error = f"“Sobre” desconhecido: {targetType}"
    rows = (
        []
        if error
        else audit.entries(
            services(request).engine,
            actor=actor or None,
            target_type=targetType or None,
            limit=limit,
            before_id=before,
        )
    )
    return _render(
        request,
        "console/audit.html",
        user=user,
        rows=rows,
        actor=actor or "",
        target_type=targetType or "",
        targets=AUDIT_TARGETS,
        error=error,
        next_before=rows[-1]["id"] if len(rows) == limit else None,
    )


@router.get("/jobs/graficos", response_class=HTMLResponse)
def charts_page(request: Request, horas: int = Query(24, ge=1, le=168)):
    user = _admin_user(request)
    svc = services(request)
    data = stats.hourly(svc.engine, horas, clock=svc.clock)
    return _render(
        request, "console/charts.html", user=user, hours=horas, chart=_bars(data, horas, svc)
    )


def _bars(data: dict, hours: int, svc) -> dict[str, Any]:
    """Server-drawn SVG bars (no charting library: a few KB): runs and failures per hour,
    stacked by job type."""
    start = datetime.fromisoformat(data["since"])
    slots = [start + timedelta(hours=i) for i in range(hours)]
    index = {s.isoformat(): i for i, s in enumerate(slots)}
    types = sorted({b["jobType"] for b in data["buckets"]})
    runs = {t: [0] * hours for t in types}
    failures = [0] * hours
    for b in data["buckets"]:
        i = index.get(b["hour"])
        if i is not None:
            runs[b["jobType"]][i] += b["runs"]
            failures[i] += b["failures"]
    totals = [sum(runs[t][i] for t in types) for i in range(hours)]
    peak = max(totals + [1])
    palette = ["#3483fa", "#00a650", "#ff7733", "#8e44ad", "#16a085", "#c0392b", "#7f8c8d"]
    return {
        "slots": [when(s) for s in slots],
        "types": [{"name": t, "color": palette[i % len(palette)]} for i, t in enumerate(types)],
        "runs": runs,
        "failures": failures,
        "totals": totals,
        "peak": peak,
        "total_runs": sum(totals),
        "total_failures": sum(failures),
    }


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: int):
    user = _admin_user(request)
    if not 1 <= job_id <= MAX_ID:
        raise PageMessage(404, user, "Job não encontrado", f"Não existe job #{job_id}.")
    svc = services(request)
    admin = JobAdmin(svc.engine, svc.clock)
    try:
        job = admin.get(job_id)
    except JobNotFound:
        raise PageMessage(404, user, "Job não encontrado", f"Não existe job #{job_id}.") from None
    attempts = admin.logs(job_id)
    return _render(
        request,
        "console/job.html",
        user=user,
        job=job,
        attempts=attempts,
        current=_current_run(job, attempts, svc.clock.now()),
        history=_history(job, attempts),
        permanent=is_permanent(job),
        trail=audit.entries(svc.engine, target_type="job", target_id=str(job_id), limit=20),
    )
