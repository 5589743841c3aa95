"""Every statement of the SQLite backend, by name, in SQLAlchemy's `:name` style (run as
`text()` with typed bind parameters: SQLite stores times as text).

SQLite has no row locks: every write transaction begins IMMEDIATE (db/engine.py) and
holds the database's write lock, so a claim cannot race another and needs no
`SKIP LOCKED`. A claim statement has one slot, `{queue_filter}`: empty, `QUEUE_FILTER`
(a worker's own queues) or `EXCLUDE_FILTER` (all but the paused ones); both expanding.
"""

from superseller.jobs.backend.base import LOST_MESSAGE

QUEUE_FILTER = "AND c.queue IN :queues"
EXCLUDE_FILTER = "AND c.queue NOT IN :exclude"

CLAIM = """
WITH candidates AS (
    SELECT c.id, c.lock_key, c.priority, c.run_at
    FROM jobs c
    WHERE c.status = 'pending' AND c.run_at <= :now {queue_filter}
      AND (c.lock_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM jobs r WHERE r.status = 'running' AND r.lock_key = c.lock_key))
    ORDER BY c.priority DESC, c.run_at, c.id
    LIMIT :limit
), ranked AS (
    SELECT id, lock_key,
           row_number() OVER (PARTITION BY lock_key ORDER BY priority DESC, run_at, id) AS rn
    FROM candidates
)
UPDATE jobs
SET status = 'running', attempts = attempts + 1, worker_id = :worker,
    started_at = :now, heartbeat_at = :now
WHERE id IN (SELECT id FROM ranked WHERE lock_key IS NULL OR rn = 1)
RETURNING id, type, queue, tenant_id, payload, attempts, max_attempts, timeout_s,
          lock_key, scheduled_for, schedule_id
"""

# The fair claim: see postgres_sql.FAIR_CLAIM for the reasoning (same rule).
FAIR_CLAIM = """
WITH busy AS (
    SELECT b.tenant_id, count(*) AS n
    FROM jobs b
    WHERE b.status = 'running' AND b.tenant_id IS NOT NULL
    GROUP BY b.tenant_id
), candidates AS (
    SELECT c.id, c.lock_key, c.tenant_id, c.priority, c.run_at
    FROM jobs c
    WHERE c.status = 'pending' AND c.run_at <= :now {queue_filter}
      AND (c.lock_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM jobs r WHERE r.status = 'running' AND r.lock_key = c.lock_key))
      AND (c.tenant_id IS NULL OR c.tenant_id NOT IN (
            SELECT tenant_id FROM busy WHERE n >= :tenant_cap))
    ORDER BY c.priority DESC, c.run_at, c.id
    LIMIT :scan
), ranked AS (
    SELECT k.id, k.tenant_id, k.priority, k.run_at, k.lock_key, COALESCE(u.n, 0) AS busy,
           row_number() OVER (PARTITION BY k.lock_key ORDER BY k.priority DESC, k.run_at, k.id)
               AS rn,
           row_number() OVER (PARTITION BY k.tenant_id ORDER BY k.priority DESC, k.run_at, k.id)
               AS tn
    FROM candidates k LEFT JOIN busy u ON u.tenant_id = k.tenant_id
), picked AS (
    SELECT id FROM ranked
    WHERE (lock_key IS NULL OR rn = 1) AND (tenant_id IS NULL OR busy + tn <= :tenant_cap)
    ORDER BY priority DESC, run_at, id
    LIMIT :limit
)
UPDATE jobs
SET status = 'running', attempts = attempts + 1, worker_id = :worker,
    started_at = :now, heartbeat_at = :now
WHERE id IN (SELECT id FROM picked)
RETURNING id, type, queue, tenant_id, payload, attempts, max_attempts, timeout_s,
          lock_key, scheduled_for, schedule_id
"""

# One outcome (the job_logs rows follow in one executemany). Fencing as in
# postgres_sql.FINISH: the holder, or the rescued attempt nobody restarted.
FINISH = f"""
UPDATE jobs
SET status = :status, result = :result, last_error = :error, attempts = attempts - :uncounted,
    run_at = COALESCE(:run_at, run_at),
    finished_at = CASE WHEN :status = 'pending' THEN NULL ELSE :completed END,
    worker_id = NULL, heartbeat_at = NULL
WHERE id = :id AND attempts = :attempt
  AND ((status = 'running' AND worker_id = :worker)
       OR (status IN ('pending', 'failed') AND worker_id IS NULL AND NOT cancel_requested
           AND last_error LIKE '{LOST_MESSAGE}%'))
"""

LAST_ID = "SELECT last_insert_rowid()"

HEARTBEAT = """
UPDATE jobs SET heartbeat_at = :now
WHERE worker_id = :worker AND status = 'running' AND id IN :ids
RETURNING id, cancel_requested
"""

# A job lent to a private runner (`home_queue` set: a command line's run) whose runner
# vanished goes home, where the workers serving its queue run it, with its home's attempts:
# the loan ends with its runner, whatever becomes of the job.
_TRIES = "MAX(max_attempts, COALESCE(home_max_attempts, 0))"
_RESCUE = f"""
UPDATE jobs
SET status = CASE WHEN cancel_requested THEN 'cancelled'
                  WHEN attempts < {_TRIES} THEN 'pending'
                  ELSE 'failed' END,
    finished_at = CASE WHEN cancel_requested OR attempts >= {_TRIES} THEN :now END,
    queue = COALESCE(home_queue, queue), max_attempts = {_TRIES},
    home_queue = NULL, home_max_attempts = NULL,
    last_error = :message, worker_id = NULL, heartbeat_at = NULL, run_at = :now
WHERE status = 'running' AND heartbeat_at < :cutoff AND {{whose}}
RETURNING id, type, tenant_id, attempts, started_at, status, queue
"""
# Others' silent jobs; and the caller's own silent jobs that it does not hold: a claim
# whose answer was lost with the connection (committed, but the worker never saw it).
RESCUE_OTHERS = _RESCUE.format(whose="worker_id <> :alive")
RESCUE_ORPHANS = _RESCUE.format(whose="(worker_id <> :alive OR id NOT IN :held)")

RELEASE = """
UPDATE jobs
SET status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END,
    finished_at = CASE WHEN cancel_requested THEN :now END,
    attempts = CASE WHEN cancel_requested THEN attempts ELSE attempts - 1 END,
    worker_id = NULL, heartbeat_at = NULL, run_at = :now
WHERE id = :id AND status = 'running' AND attempts = :attempt AND worker_id = :worker
"""

HOUR_BUCKET_FORMAT = "%Y-%m-%d %H:00:00"
