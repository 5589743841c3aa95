"""Every statement of the PostgreSQL backend, by name, in psycopg's `%(name)s` style
(sent with `exec_driver_sql`: the hot path skips SQLAlchemy's compilation).

A claim statement has one slot, `{queue_filter}`: empty, `QUEUE_FILTER` (a worker's own
queues) or `EXCLUDE_FILTER` (every queue but the paused ones). Without a paused queue the
claim is the unfiltered statement, unchanged.
"""

from superseller.jobs.backend.base import LOST_MESSAGE

# Without statistics (a new or freshly filled table, before autovacuum's first
# ANALYZE) the planner takes the queue for tiny and answers a claim with a bitmap scan
# of *every* pending job plus a sort, and a finish with a bitmap scan of every index
# entry ever written for 'running' (bitmap scans never mark dead entries, so that grows
# with each job until vacuum). Plain index scans are what these statements need at any
# size: the claim reads its LIMIT in index order and both skip dead entries once seen.
HOT_PATH_PLANNER = (
    "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true)"
)

QUEUE_FILTER = "AND c.queue = ANY(%(queues)s)"
EXCLUDE_FILTER = "AND c.queue <> ALL(%(exclude)s)"

# payload::text: psycopg would parse each payload with json.loads on bytes; text lets
# the common empty payload skip parsing altogether.
CLAIM = """
WITH candidates AS (
    SELECT c.id, c.lock_key, c.priority, c.run_at
    FROM jobs c
    WHERE c.status = 'pending' AND c.run_at <= %(now)s {queue_filter}
      AND (c.lock_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM jobs r WHERE r.status = 'running' AND r.lock_key = c.lock_key))
    ORDER BY c.priority DESC, c.run_at, c.id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), ranked AS (
    SELECT id, lock_key,
           row_number() OVER (PARTITION BY lock_key ORDER BY priority DESC, run_at, id) AS rn
    FROM candidates
)
UPDATE jobs
SET status = 'running', attempts = attempts + 1, worker_id = %(worker)s,
    started_at = %(now)s, heartbeat_at = %(now)s
WHERE id IN (SELECT id FROM ranked WHERE lock_key IS NULL OR rn = 1)
RETURNING id, type, queue, tenant_id, payload::text AS payload, attempts, max_attempts,
          timeout_s, lock_key, scheduled_for, schedule_id
"""

# The fair claim (JOB_TENANT_MAX_RUNNING > 0): no tenant holds more than %(tenant_cap)s
# running jobs, fleet-wide. Candidates skip tenants already at the cap (`busy`: the
# running jobs per tenant, counted once per claim — running jobs are few) and the pick
# ranks each tenant's candidates (`tn`) so that one claim never takes a tenant past it;
# the scan window (%(scan)s) is wider than the claim so that a tenant with thousands of
# pending jobs cannot fill it. Jobs without a tenant are uncapped.
FAIR_CLAIM = """
WITH busy AS (
    SELECT b.tenant_id, count(*) AS n
    FROM jobs b
    WHERE b.status = 'running' AND b.tenant_id IS NOT NULL
    GROUP BY b.tenant_id
), candidates AS (
    SELECT c.id, c.lock_key, c.tenant_id, c.priority, c.run_at
    FROM jobs c
    WHERE c.status = 'pending' AND c.run_at <= %(now)s {queue_filter}
      AND (c.lock_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM jobs r WHERE r.status = 'running' AND r.lock_key = c.lock_key))
      AND (c.tenant_id IS NULL OR c.tenant_id NOT IN (
            SELECT tenant_id FROM busy WHERE n >= %(tenant_cap)s))
    ORDER BY c.priority DESC, c.run_at, c.id
    LIMIT %(scan)s
    FOR UPDATE SKIP LOCKED
), ranked AS (
    SELECT k.id, k.tenant_id, k.priority, k.run_at, k.lock_key, COALESCE(u.n, 0) AS busy,
           row_number() OVER (PARTITION BY k.lock_key ORDER BY k.priority DESC, k.run_at, k.id)
               AS rn,
           row_number() OVER (PARTITION BY k.tenant_id ORDER BY k.priority DESC, k.run_at, k.id)
               AS tn
    FROM candidates k LEFT JOIN busy u ON u.tenant_id = k.tenant_id
), picked AS (
    SELECT id FROM ranked
    WHERE (lock_key IS NULL OR rn = 1) AND (tenant_id IS NULL OR busy + tn <= %(tenant_cap)s)
    ORDER BY priority DESC, run_at, id
    LIMIT %(limit)s
)
UPDATE jobs
SET status = 'running', attempts = attempts + 1, worker_id = %(worker)s,
    started_at = %(now)s, heartbeat_at = %(now)s
WHERE id IN (SELECT id FROM picked)
RETURNING id, type, queue, tenant_id, payload::text AS payload, attempts, max_attempts,
          timeout_s, lock_key, scheduled_for, schedule_id
"""

# A whole batch of outcomes, and their job_logs rows, in one statement. One JSON
# document for the batch: far cheaper to send than a dozen typed arrays. A key left out
# of a row is NULL (`records`: 0).
# An attempt given back (`uncounted`, present only then) takes its attempt back.
# Who may record an attempt's end: the worker that holds the job, or, fenced by the
# attempt number, the worker whose job was rescued while its outcome waited to be
# written (a stall, an outage) and that nobody has started again since.
FINISH = f"""
WITH v AS (
    SELECT * FROM jsonb_to_recordset(CAST(%(data)s AS jsonb)) AS v(
        id bigint, attempt int, status text, result jsonb, error text, run_at timestamptz,
        completed_at timestamptz, log_type text, log_status text, started_at timestamptz,
        duration_ms int, records int, meta jsonb, uncounted boolean)
), done AS (
    UPDATE jobs j
    SET status = v.status,
        attempts = CASE WHEN v.uncounted THEN j.attempts - 1 ELSE j.attempts END,
        result = v.result,
        last_error = v.error,
        run_at = COALESCE(v.run_at, j.run_at),
        finished_at = CASE WHEN v.status = 'pending' THEN NULL ELSE v.completed_at END,
        worker_id = NULL,
        heartbeat_at = NULL
    FROM v
    WHERE j.id = v.id AND j.attempts = v.attempt
      AND ((j.status = 'running' AND j.worker_id = %(worker)s)
           OR (j.status IN ('pending', 'failed') AND j.worker_id IS NULL
               AND NOT j.cancel_requested AND j.last_error LIKE '{LOST_MESSAGE}%%'))
    RETURNING j.id, j.tenant_id
)
INSERT INTO job_logs (job_id, job_type, tenant_id, status, attempt, started_at, completed_at,
                      duration_ms, records_processed, error_message, metadata)
SELECT v.id, v.log_type, done.tenant_id, v.log_status, v.attempt, v.started_at, v.completed_at,
       v.duration_ms, COALESCE(v.records, 0), v.error, v.meta
FROM v JOIN done ON done.id = v.id
RETURNING job_id
"""

# A batch of new jobs (no unique_key) as one JSON document: one statement whose text does
# not depend on the batch size (psycopg parses and the server plans it once), instead of a
# multi-row VALUES list re-parsed per batch. `n` orders the rows, so the ids (from the
# sequence, in insertion order) follow the batch's order.
INSERT_JOBS = """
WITH v AS (
    SELECT v.n, v.type, v.queue, v.tenant_id, COALESCE(v.payload, '{}'::jsonb) AS payload,
           COALESCE(v.priority, 0) AS priority, v.max_attempts, v.lock_key, v.timeout_s,
           COALESCE(v.created_at, CAST(%(created_at)s AS timestamptz)) AS created_at,
           v.run_at, v.schedule_id, v.scheduled_for, v.home_queue, v.home_max_attempts
    FROM jsonb_to_recordset(CAST(%(data)s AS jsonb)) AS v(
        n int, type text, queue text, tenant_id text, payload jsonb, priority int,
        run_at timestamptz, max_attempts int, lock_key text, timeout_s float8,
        created_at timestamptz, schedule_id bigint, scheduled_for timestamptz,
        home_queue text, home_max_attempts int)
)
INSERT INTO jobs (type, queue, tenant_id, payload, status, priority, run_at, attempts,
                  max_attempts, unique_key, lock_key, timeout_s, cancel_requested, created_at,
                  schedule_id, scheduled_for, home_queue, home_max_attempts)
SELECT v.type, v.queue, v.tenant_id, v.payload, 'pending', v.priority,
       COALESCE(v.run_at, v.created_at), 0, v.max_attempts, NULL, v.lock_key, v.timeout_s,
       false, v.created_at, v.schedule_id, v.scheduled_for, v.home_queue, v.home_max_attempts
FROM v
ORDER BY v.n
RETURNING id
"""

HEARTBEAT = """
UPDATE jobs SET heartbeat_at = %(now)s
WHERE worker_id = %(worker)s AND status = 'running' AND id = ANY(%(ids)s)
RETURNING id, cancel_requested
"""

# A job lent to a private runner (`home_queue` set: a command line's run) whose runner
# vanished goes home, where the workers serving its queue run it, with its home's attempts:
# the loan ends with its runner, whatever becomes of the job.
_TRIES = "GREATEST(max_attempts, COALESCE(home_max_attempts, 0))"
_RESCUE = f"""
UPDATE jobs
SET status = CASE WHEN cancel_requested THEN 'cancelled'
                  WHEN attempts < {_TRIES} THEN 'pending'
                  ELSE 'failed' END,
    finished_at = CASE WHEN cancel_requested OR attempts >= {_TRIES} THEN %(now)s END,
    queue = COALESCE(home_queue, queue), max_attempts = {_TRIES},
    home_queue = NULL, home_max_attempts = NULL,
    last_error = %(message)s, worker_id = NULL, heartbeat_at = NULL, run_at = %(now)s
WHERE status = 'running' AND heartbeat_at < %(cutoff)s AND {{whose}}
RETURNING id, type, tenant_id, attempts, started_at, status, queue
"""
# Others' silent jobs; and the caller's own silent jobs that it does not hold: a claim
# whose answer was lost with the connection (committed, but the worker never saw it).
RESCUE_OTHERS = _RESCUE.format(whose="worker_id <> %(alive)s")
RESCUE_ORPHANS = _RESCUE.format(whose="(worker_id <> %(alive)s OR NOT id = ANY(%(held)s))")

RELEASE = """
UPDATE jobs
SET status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END,
    finished_at = CASE WHEN cancel_requested THEN %(now)s END,
    attempts = CASE WHEN cancel_requested THEN attempts ELSE attempts - 1 END,
    worker_id = NULL, heartbeat_at = NULL, run_at = %(now)s
WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s AND worker_id = %(worker)s
"""

NOTIFY_CHANNEL = "superseller_jobs"
NOTIFY = "SELECT pg_notify(%(channel)s, %(queue)s)"

TRANSACTION_LOCK = "SELECT pg_advisory_xact_lock(hashtext(%(key)s))"
