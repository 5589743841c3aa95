"""Schedules: create, update, enable/disable, list — all validated at write time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, insert, select, update

from superseller import limits
from superseller.config import DEFAULT_TIMEZONE
from superseller.db.rows import row_dict
from superseller.db.schema import job_schedules
from superseller.jobs.clock import Clock, SystemClock
from superseller.jobs.cron import InvalidSchedule, next_fire, normalize_cron, zone
from superseller.jobs.errors import JobError
from superseller.jobs.registry import Registry

MISFIRE_POLICIES = ("latest", "all", "skip")
OVERLAP_POLICIES = ("allow", "skip", "queue_one")
EDITABLE = {
    "job_type",
    "payload",
    "cron",
    "timezone",
    "enabled",
    "misfire_policy",
    "misfire_grace_s",
    "misfire_window_s",
    "overlap_policy",
    "deadline_s",
    "queue",
    "priority",
    "max_attempts",
}


class ScheduleNotFound(JobError):
    def __init__(self, key):
        super().__init__(f"schedule {key!r} not found")


schedule_dict = row_dict


@dataclass
class Schedules:
    engine: Engine
    registry: Registry
    clock: Clock = field(default_factory=SystemClock)

    def validate(self, values: dict[str, Any]) -> dict[str, Any]:
        """Check and normalise the editable fields present in `values`."""
        out = dict(values)
        unknown = set(out) - EDITABLE
        if unknown:
            raise InvalidSchedule(f"unknown schedule field(s): {', '.join(sorted(unknown))}")
        if "cron" in out:
            out["cron"] = normalize_cron(out["cron"])
        if "timezone" in out:
            zone(out["timezone"])
        if "job_type" in out:
            out["job_type"] = self.registry.get(out["job_type"]).name
        if out.get("payload") is not None:
            limits.check_payload_size(out["payload"])  # before parsing a huge one
        if "payload" in out and "job_type" in out:
            self.registry.parse_payload(out["job_type"], out["payload"])
        if out.get("misfire_policy") not in (None, *MISFIRE_POLICIES):
            raise InvalidSchedule(f"misfire policy must be one of {', '.join(MISFIRE_POLICIES)}")
        if out.get("overlap_policy") not in (None, *OVERLAP_POLICIES):
            raise InvalidSchedule(f"overlap policy must be one of {', '.join(OVERLAP_POLICIES)}")
        for key in ("misfire_grace_s", "misfire_window_s", "deadline_s", "max_attempts"):
            if out.get(key) is not None and (not isinstance(out[key], int) or out[key] < 1):
                raise InvalidSchedule(f"{key} must be a positive whole number")
        # The bounds its jobs will meet at enqueue, checked now (limits: one home).
        for key in ("misfire_grace_s", "misfire_window_s", "deadline_s"):
            if out.get(key) is not None:
                limits.check_int(out[key], 1, limits.DEADLINE_MAX_S, key)
        if out.get("max_attempts") is not None:
            limits.check_int(out["max_attempts"], 1, limits.MAX_ATTEMPTS_MAX, "max attempts")
        if out.get("priority") is not None:
            limits.check_int(out["priority"], limits.PRIORITY_MIN, limits.PRIORITY_MAX, "priority")
        return out

    def create(
        self,
        name: str,
        job_type: str,
        cron: str,
        *,
        payload: dict | None = None,
        timezone: str = DEFAULT_TIMEZONE,
        **options: Any,
    ) -> dict[str, Any]:
        if not name or len(name) > 100:
            raise InvalidSchedule("schedule name must be 1-100 characters")
        values = self.validate(
            {
                "job_type": job_type,
                "cron": cron,
                "payload": payload or {},
                "timezone": timezone,
                **options,
            }
        )
        now = self.clock.now()
        values.setdefault("enabled", True)
        values["next_run_at"] = next_fire(values["cron"], values["timezone"], now)
        with self.engine.begin() as conn:
            if conn.execute(select(job_schedules.c.id).where(job_schedules.c.name == name)).first():
                raise InvalidSchedule(f"a schedule named {name!r} already exists")
            conn.execute(
                insert(job_schedules).values(name=name, created_at=now, updated_at=now, **values)
            )
        return self.get(name)

    def update(self, name: str, **changes: Any) -> dict[str, Any]:
        current = self.get(name)
        merged = {"job_type": current["job_type"], "payload": current["payload"], **changes}
        values = self.validate(merged)
        values = {k: v for k, v in values.items() if k in changes}
        now = self.clock.now()
        cron = values.get("cron", current["cron"])
        tz = values.get("timezone", current["timezone"])
        if {"cron", "timezone"} & set(values) or values.get("enabled") and not current["enabled"]:
            # A new rule, or a paused schedule coming back: next tick from now on
            # (what was skipped while paused is in the ledger's hands via backfill).
            values["next_run_at"] = next_fire(cron, tz, now)
        if "enabled" in values:
            values["disabled_reason"] = None
        values["updated_at"] = now
        with self.engine.begin() as conn:
            conn.execute(
                update(job_schedules).where(job_schedules.c.id == current["id"]).values(**values)
            )
        return self.get(name)

    def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        return self.update(name, enabled=enabled)

    def get(self, key: str | int) -> dict[str, Any]:
        col = job_schedules.c.id if isinstance(key, int) else job_schedules.c.name
        with self.engine.connect() as conn:
            row = conn.execute(select(job_schedules).where(col == key)).first()
        if row is None:
            raise ScheduleNotFound(key)
        return schedule_dict(row)

    def list(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(job_schedules).order_by(job_schedules.c.name)).all()
        return [schedule_dict(r) for r in rows]
