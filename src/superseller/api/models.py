"""Response bodies of the job routes, camelCase on the wire like the seed's JSON.

Services hand rows over with their column names (`tenant_id`); each model reads those
(or the camelCase name) and writes camelCase (`tenantId`). Times are ISO 8601 strings in
UTC. The error body of every route is `ErrorBody` (`{"error": {"code", "message"}}`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Wire(BaseModel):
    """Reads snake_case or camelCase, writes camelCase."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, serialize_by_alias=True
    )


# -- errors ----------------------------------------------------------------------
class FieldProblem(BaseModel):
    field: str
    problem: str


class ErrorDetail(BaseModel):
    code: str = Field(examples=["invalid_request"])
    message: str = Field(examples=["the request is not valid"])
    fields: list[FieldProblem] | None = None


class ErrorBody(BaseModel):
    """What every error answers (4xx and 5xx)."""

    error: ErrorDetail


# -- jobs ------------------------------------------------------------------------
JobState = Literal["pending", "running", "completed", "failed", "cancelled"]


class Job(Wire):
    """A job (times ISO 8601, UTC)."""

    id: int
    type: str
    queue: str
    tenant_id: str | None
    payload: dict[str, Any]
    status: JobState
    priority: int
    run_at: str
    attempts: int
    max_attempts: int
    unique_key: str | None = None
    lock_key: str | None = None
    timeout_s: float | None = None
    cancel_requested: bool
    last_error: str | None = None
    result: dict[str, Any] | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    schedule_id: int | None = None
    scheduled_for: str | None = None


class JobLog(Wire):
    """One attempt of a job (a `job_logs` row). `attempt` is the number of the counted
    attempt the run belonged to: an `interrupted` (shutdown) or `disconnected` (database
    connection lost) run did not count, so the run after it carries the same number."""

    id: int
    job_id: int
    job_type: str
    tenant_id: str | None
    status: Literal[
        "success", "error", "timeout", "cancelled", "lost", "interrupted", "disconnected"
    ]
    attempt: int
    started_at: str
    completed_at: str
    duration_ms: int
    records_processed: int
    error_message: str | None
    metadata: dict[str, Any] | None


class JobLogs(Wire):
    logs: list[JobLog]


class JobWithLogs(Wire):
    job: Job
    logs: list[JobLog]


class JobList(Wire):
    jobs: list[Job]
    next_before: int | None = Field(description="pass as `before` for the next page")


class Created(Wire):
    job: Job
    created: bool = Field(description="false: an unfinished job with the same uniqueKey")


class Cancelled(Wire):
    outcome: Literal["cancelled", "cancel_requested"]
    job: Job


class NextPage(Wire):
    before: int = Field(description="pass as `before`")
    before_finished: str | None = Field(
        None, description="pass as `beforeFinished` (sort=finished)"
    )


class JobPage(Wire):
    jobs: list[Job]
    next: NextPage | None = Field(description="the next page's keys; null on the last page")


class PausedQueue(Wire):
    queue: str
    reason: str | None
    actor: str | None = Field(description="who paused it: an admin's email, `cli`, …")
    paused_at: str


class EngineState(Wire):
    paused: bool
    reason: str | None
    changed_at: str | None
    paused_queues: list[PausedQueue] = Field(
        description="queues paused on their own (their jobs wait; other queues run)"
    )


class Retryable(Wire):
    count: int = Field(description="the jobs the bulk action would touch, up to its cap")
    capped: bool


class Counts(Wire):
    by_state: dict[str, int] = Field(description="jobs per state under the filter (state aside)")
    capped: list[str] = Field(description="states with more than `cap` jobs (shown as cap+)")
    cap: int
    finished_window_hours: int | None = Field(
        description="finished jobs counted over the last N hours (null: the filter's window, "
        "or allTime)"
    )
    latest_id: int | None = Field(description="the newest job under the filter")
    engine: EngineState
    retryable: Retryable | None = Field(
        None, description="with `retryable=true`: what a bulk retry would re-queue now"
    )
    cancellable: Retryable | None = Field(
        None,
        description="with `cancellable=true`: what a bulk cancel would touch now (pending jobs, "
        "running ones not yet asked to stop)",
    )
    job_states: dict[str, str] | None = Field(
        None, description="with `ids`: the state of each of those jobs (a page's visible rows)"
    )


class BulkResult(Wire):
    cancelled: int | None = None
    cancel_requested: int | None = None
    retried: int | None = None


class AuditEntry(Wire):
    id: int
    at: str
    actor: str = Field(description="a user's email, or `cli`, `internal-key`, `scheduler`")
    action: str
    target_type: Literal["job", "jobs", "schedule", "engine", "queue"]
    target_id: str | None
    detail: dict[str, Any] | None


class AuditPage(Wire):
    entries: list[AuditEntry]
    next_before: int | None


class HourBucket(Wire):
    hour: str
    job_type: str
    runs: int
    failures: int


class Hourly(Wire):
    hours: int
    since: str
    buckets: list[HourBucket]


# -- run statistics (`/stats`) ---------------------------------------------------
class TypeStats(Wire):
    job_type: str
    total_runs: int
    runs24h: int = Field(alias="runs24h")
    failures24h: int = Field(alias="failures24h")  # error or timeout
    interrupted24h: int = Field(alias="interrupted24h")  # given back, rescued, shut down
    avg_duration_ms: int | None
    total_duration_ms: int
    retries: int
    by_status: dict[str, int]
    last_run: JobLog | None


class TypeStatsReport(Wire):
    types: list[TypeStats]
    recent_errors: list[JobLog]


class QueueCounts(Wire):
    by_state: dict[str, int]
    by_queue: dict[str, dict[str, int]]
    finished_window_hours: int
    due: int
    oldest_due_age_s: float | None = Field(alias="oldestDueAgeS")
    schedules: dict[str, int]


class AdminStats(TypeStatsReport, QueueCounts):
    late_schedules: list[str]
    engine: EngineState


class StatusSummary(Wire):
    job_type: str
    status: str
    count: int
    avg_duration_ms: int | None


class JobStatus(Wire):
    logs: list[JobLog]
    summary: list[StatusSummary]
    last_successful: dict[str, JobLog]


# -- schedules -------------------------------------------------------------------
class Lateness(Wire):
    late: bool
    tick: str | None
    deadline: str | None = None


class Occurrence(Wire):
    fire_time: str
    outcome: Literal["enqueued", "skipped", "missed", "backfilled"]
    reason: str | None
    job_id: int | None
    job_status: JobState | None


class Schedule(Wire):
    id: int
    name: str
    job_type: str
    payload: dict[str, Any]
    cron: str
    timezone: str
    enabled: bool
    disabled_reason: str | None = None
    misfire_policy: Literal["latest", "all", "skip"]
    misfire_grace_s: int
    misfire_window_s: int
    overlap_policy: Literal["allow", "skip", "queue_one"]
    deadline_s: int | None = None
    queue: str | None = None
    priority: int | None = None
    max_attempts: int | None = None
    next_run_at: str | None = None
    last_fired_at: str | None = None
    created_at: str
    updated_at: str
    last_occurrence: Occurrence | None
    lateness: Lateness | None


class ScheduleList(Wire):
    schedules: list[Schedule]


class Occurrences(Wire):
    schedule: str
    occurrences: list[Occurrence]


class BackfilledTick(Wire):
    fire_time: str
    job_id: int


class Backfilled(Wire):
    schedule: str
    enqueued: list[BackfilledTick]


class RunNow(Wire):
    schedule: str
    job: Job


# -- internal endpoints (the seed's shapes) -------------------------------------
class Accepted(Wire):
    job_id: int
    status: JobState
    status_url: str


class DateRange(Wire):
    from_: str | None = Field(None, alias="from")
    to: str | None = None
    max_date_after_rebuild: str | None = None


class RebuildOutcome(Wire):
    """The seed's response when the rebuild finished within the wait (`success: false` with
    `error` when it failed; `fannedOut` for `tenantId: "all"`)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [  # the seed's (jobs system document), with this API's integer ids
                {
                    "success": True,
                    "jobId": 42,
                    "jobLogId": 1234,
                    "duration": 1234,
                    "daysProcessed": 30,
                    "rowsUpserted": 150,
                    "listingsProcessed": 50,
                    "dateRange": {
                        "from": "2024-01-01",
                        "to": "2024-01-31",
                        "maxDateAfterRebuild": "2024-01-31",
                    },
                }
            ]
        },
    )
    success: bool
    job_id: int
    job_log_id: int | None
    error: str | None = None
    duration: int | None = None
    days_processed: int | None = None
    rows_upserted: int | None = None
    listings_processed: int | None = None
    date_range: DateRange | None = None


# -- seller, market, auth, health ------------------------------------------------
class Open(BaseModel):
    """A body whose named fields are declared and whose other fields are documented in
    docs/api.md (figures and breakdowns that grow with the features)."""

    model_config = ConfigDict(extra="allow")


class Period(Open):
    from_: str = Field(alias="from")
    to: str


class Overview(Open):
    period: Period
    currency: str = Field(examples=["BRL"])
    comparison: dict[str, Any]
    today: dict[str, Any] | None


class Explanation(Open):
    pass


class ListingsPage(Open):
    period: Period
    total: int
    listings: list[dict[str, Any]]
    page: int | None = None
    pages: int | None = None
    perPage: int | None = None


class ListingScore(Open):
    listingId: int
    externalId: str | None
    title: str | None
    scoredAt: str | None
    explanation: Any = None


class FreshnessReason(BaseModel):
    code: str
    message: str


class Realtime(BaseModel):
    """Mercado Livre notifications for the tenant: none ever, flowing, or stopped since."""

    state: Literal["never", "flowing", "stopped"]
    lastAt: str | None
    message: str | None = Field(examples=["Tempo real"])


class LastSyncFailed(BaseModel):
    """The store's last sync that ended failed for good (no attempts left) after its last
    successful one: the numbers are those of that success. A later success clears it; a
    cancelled sync (an operator's) is not a failure, nor one still retrying."""

    at: str = Field(description="when the failed sync ended (UTC)")
    reason: str = Field(examples=["A busca de pedidos e visitas no Mercado Livre falhou"])
    nextSyncAt: str | None = Field(
        description="the next scheduled sync covering the store (UTC), null when none is"
    )
    message: str = Field(
        description="the overview's sentence, in pt-BR",
        examples=[
            "A última atualização, às 18:41, não foi concluída: a busca de pedidos e visitas "
            "no Mercado Livre falhou. Os números são de 07/12 às 18:28. Tentaremos de novo "
            "amanhã às 02:00 — ou clique em Atualizar dados."
        ],
    )


class Freshness(BaseModel):
    tenantId: str
    status: Literal["ok", "partial", "importing", "stale", "reauth_required", "not_connected"]
    label: str = Field(examples=["Atualizado"])
    connection: Literal["connected", "reauth_required", "not_connected"]
    reasons: list[FreshnessReason]
    # Listings whose visits the last successful sync could not fetch (`partial` while > 0).
    missingVisits: int = 0
    realtime: Realtime | None = None
    lastSyncAt: str | None
    lastRebuildAt: str | None
    maxDate: str | None
    updatedUntil: str | None
    # Said beside `status` (which stays what the last good sync makes it), null otherwise.
    lastSyncFailed: LastSyncFailed | None = None


class MLDisconnected(BaseModel):
    """A store's Mercado Livre account, disconnected: its tokens are gone, its data kept."""

    tenantId: str
    mlUserIds: list[int] = Field(description="the Mercado Livre user(s) disconnected")
    connection: Literal["not_connected"] = "not_connected"


class RefreshStarted(BaseModel):
    jobIds: list[int]
    created: bool
    statusUrl: str


class RefreshSteps(BaseModel):
    done: int
    total: int
    text: str | None = Field(
        None,
        description="while running, the step under way in pt-BR, moving within the sync",
        examples=["Etapa 1 de 3: buscando as visitas dos anúncios (23 de 60)"],
    )


class RefreshProgress(BaseModel):
    paused: bool
    state: Literal["running", "done", "failed"]
    steps: RefreshSteps
    sync: JobState
    rebuild: JobState | None
    error: str | None
    cancelled: bool = Field(
        False, description="the step that ended the chain was cancelled by the team, not failed"
    )
    message: str | None


class LoginUser(BaseModel):
    email: str
    role: Literal["admin", "seller"]
    tenantId: str | None


class LoggedIn(BaseModel):
    token: str
    user: LoginUser


class HarvestSource(Open):
    id: int
    kind: str
    enabled: bool


class HarvestSources(BaseModel):
    sources: list[HarvestSource]


class PriceDrops(BaseModel):
    priceDrops: list[dict[str, Any]]
    count: int


class QuestionDrafts(BaseModel):
    drafts: list[dict[str, Any]]


class Health(BaseModel):
    status: Literal["ok"]


class Ready(Open):
    status: Literal["ok"]
    migrations: str | None
    loops: list[dict[str, Any]]
