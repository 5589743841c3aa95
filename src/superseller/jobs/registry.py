"""Job types and their handlers. Features register here; the engine looks up."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from superseller.jobs.errors import InvalidPayload, UnknownJobType

Handler = Callable[..., Any]  # (ctx) -> dict | None, sync or async


class NoPayload(BaseModel):
    """The schema of a job type that takes no payload: any field is refused."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class JobType:
    name: str
    handler: Handler
    # The payload's schema, with extra="forbid" (unknown fields are refused); NoPayload for
    # a type that takes none. None (free-form, unchecked) is for tests' own types only.
    payload_model: type[BaseModel] | None = None
    log_type: str | None = None  # the job_logs.job_type value, if not the name
    queue: str = "default"
    max_attempts: int = 3
    timeout_s: float | None = None
    retry_base_s: float | None = None
    # Derive a lock_key / unique_key from the validated payload and tenant.
    lock_key: Callable[[Any, str | None], str | None] | None = None
    description: str = ""
    # Former names: jobs and schedules written under them still run (as this type).
    aliases: tuple[str, ...] = ()

    @property
    def logged_as(self) -> str:
        return self.log_type or self.name

    @cached_property
    def is_async(self) -> bool:
        """The handler is a coroutine function (runs on the worker's event loop)."""
        return inspect.iscoroutinefunction(self.handler)


class Registry:
    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}
        self._aliases: dict[str, str] = {}

    def add(self, job_type: JobType) -> JobType:
        for name in (job_type.name, *job_type.aliases):
            if name in self._types or name in self._aliases:
                raise ValueError(f"job type {name!r} is already registered")
        model = job_type.payload_model
        if model is not None and model.model_config.get("extra") != "forbid":
            # Unknown payload fields are refused, never silently dropped.
            raise ValueError(f"the payload model of {job_type.name!r} must set extra='forbid'")
        self._types[job_type.name] = job_type
        self._aliases.update(dict.fromkeys(job_type.aliases, job_type.name))
        return job_type

    def canonical(self, name: str) -> str:
        """The one name of a job type, given it or one of its former names."""
        return self._aliases.get(name, name)

    def register(self, name: str, **options: Any) -> Callable[[Handler], Handler]:
        """Decorator form: `@registry.register("cleanup")`."""

        def wrap(fn: Handler) -> Handler:
            self.add(JobType(name=name, handler=fn, **options))
            return fn

        return wrap

    def get(self, name: str) -> JobType:
        try:
            return self._types[self.canonical(name)]
        except KeyError:
            raise UnknownJobType(name, list(self._types)) from None

    def find(self, name: str) -> JobType | None:
        """The job type, or None if it is not registered."""
        return self._types.get(self.canonical(name))

    def __contains__(self, name: str) -> bool:
        return self.canonical(name) in self._types

    def names(self) -> list[str]:
        return sorted(self._types)

    def logged_as(self, name: str) -> str:
        jt = self.find(name)
        return jt.logged_as if jt else name

    def parse_payload(self, name: str, payload: Any) -> Any:
        """Validate a payload with the type's schema; return the parsed value."""
        jt = self.get(name)
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise InvalidPayload(name, "payload must be a JSON object")
        if jt.payload_model is None:
            return payload
        try:
            return jt.payload_model.model_validate(payload)
        except ValidationError as exc:
            raise InvalidPayload(name, _describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "payload"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
