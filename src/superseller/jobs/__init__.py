"""The job engine: a durable queue in the database, workers, schedules and job logs.

It knows nothing of Mercado Livre or metrics: features register handlers with a
`Registry`, and the engine runs them.
"""

from superseller.jobs.context import JobContext
from superseller.jobs.errors import (
    InvalidPayload,
    JobCancelled,
    JobError,
    JobTimeout,
    PermanentJobError,
    UnknownJobType,
)
from superseller.jobs.registry import JobType, Registry

__all__ = [
    "InvalidPayload",
    "JobCancelled",
    "JobContext",
    "JobError",
    "JobTimeout",
    "JobType",
    "PermanentJobError",
    "Registry",
    "UnknownJobType",
]
