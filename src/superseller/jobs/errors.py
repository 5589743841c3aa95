"""Errors the job engine raises or understands."""

from superseller.errors import UserFacingError


class JobError(UserFacingError):
    """Base class for job engine errors shown to users (the API maps each subclass)."""


class UnknownJobType(JobError):
    def __init__(self, job_type: str, known: list[str]):
        names = ", ".join(sorted(known)) or "none"
        super().__init__(f"unknown job type {job_type!r} (registered: {names})")
        self.job_type = job_type


class InvalidPayload(JobError):
    def __init__(self, job_type: str, detail: str):
        super().__init__(f"invalid payload for {job_type!r}: {detail}")
        self.job_type = job_type
        self.detail = detail


class JobNotFound(JobError):
    def __init__(self, job_id: int):
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class InvalidTransition(JobError):
    """An admin action that does not apply to the job's current state."""


class JobCancelled(Exception):
    """Raised inside a handler (by `ctx.raise_if_cancelled()`) when cancel was requested."""


class JobTimeout(Exception):
    """The attempt ran past its timeout."""


class PermanentJobError(Exception):
    """A handler failure that retrying cannot fix: the job fails at once, no retry."""
