"""The database schema (SQLAlchemy Core), one module per feature area.

Alembic migrations create exactly this; `superseller db check` and the schema
test compare a live database against it.
"""

from superseller.db.tables_base import BigId, metadata  # noqa: F401
from superseller.db.tables_jobs import (  # noqa: F401
    FINISHED,
    FINISHED_STATES,
    JOB_STATES,
    UNFINISHED,
    audit_log,
    engine_state,
    job_logs,
    job_schedules,
    job_stats_hourly,
    job_stats_state,
    jobs,
    paused_queues,
    schedule_occurrences,
)
from superseller.db.tables_market import (  # noqa: F401
    buyer_questions,
    embeddings,
    harvest_sources,
    harvested_content,
    price_drop_alerts,
    question_drafts,
)
from superseller.db.tables_marketplace import (  # noqa: F401
    listing_visits_daily,
    listings,
    marketplace_accounts,
    ml_notifications,
    ml_rate_buckets,
    order_items,
    orders,
    score_texts,
    sync_checkpoints,
    tenants,
)
from superseller.db.tables_metrics import (  # noqa: F401
    listing_metrics_daily,
    tenant_currency_daily,
    tenant_metrics_daily,
)
from superseller.db.tables_users import (  # noqa: F401
    login_failures,
    oauth_states_used,
    user_sessions,
    users,
)
