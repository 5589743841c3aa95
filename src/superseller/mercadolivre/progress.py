"""How far an import has come: the sync's own progress, and the chain's steps in words.

A sync notes where it is (its phase, and how many of the phase's items are done) in
`sync_checkpoints` under the part `progress`, at most once a second (`EVERY_S`) and at
each phase change; the row goes with the run's checkpoints when the sync ends. The first
import after connecting and "Atualizar dados" read it through `chain_status`, so both
count the same steps (the sync, the rebuild, the score) and say the same words.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, select

from superseller.db.schema import sync_checkpoints
from superseller.db.upsert import insert_on_conflict
from superseller.jobs.clock import Clock
from superseller.ptbr import number

PART = "progress"
EVERY_S = 1.0
# The sync's phases, in order, as the seller reads them.
PHASES = {
    "listing": "listando seus anúncios",
    "items": "buscando os anúncios",
    "orders": "buscando os pedidos",
    "visits": "buscando as visitas dos anúncios",
}
# Said after the step while the sync waits out a back-off (the client's retries).
WAITING = "aguardando o Mercado Livre, que pediu uma pausa ou não respondeu; tentando de novo…"
# A sync that ran out of attempts, as the seller reads it: the refresh's failure message
# and the overview's "A última atualização … não foi concluída" give this reason.
SYNC_FAILED = "A busca de pedidos e visitas no Mercado Livre falhou"
# Said after the step while a sync whose attempt failed waits for its next one (the job's
# retry): without it the line went back to "buscando seus dados" as if nothing had happened.
RETRYING = "a tentativa {n} de {of} não foi concluída; tentando de novo em instantes…"
STEPS = {
    "sync": "buscando seus dados no Mercado Livre",
    "rebuild": "recalculando as métricas",
    "score": "calculando as notas dos anúncios",
}


class ProgressNote:
    """The writer a sync uses: `claim()` says whether to write a note now (and counts it
    as written: concurrent tasks of one sync do not all write the same second)."""

    def __init__(self, engine: Engine, job_id: int, clock: Clock):
        self.engine, self.job_id, self.clock = engine, job_id, clock
        self._last = (None, 0.0)  # (phase, monotonic time) of the last note written

    def claim(self, phase: str, force: bool = False) -> bool:
        last_phase, at = self._last
        now = time.monotonic()
        if force or phase != last_phase or now - at >= EVERY_S:
            self._last = (phase, now)
            return True
        return False

    def write(
        self, phase: str, done: int | None = None, total: int | None = None, waiting: bool = False
    ) -> None:
        """`waiting`: the sync is waiting out Mercado Livre's back-off (a 429, 5xx or network
        error being retried), so the count stands still for a reason the seller is told."""
        data = {"phase": phase, "done": done, "total": total}
        if waiting:
            data["waiting"] = True
        stmt = insert_on_conflict(self.engine, sync_checkpoints).values(
            job_id=self.job_id, part=PART, data=data, created_at=self.clock.now()
        )
        with self.engine.begin() as conn:
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["job_id", "part"],
                    set_={"data": stmt.excluded.data, "created_at": stmt.excluded.created_at},
                )
            )


def read(engine: Engine, job_id: int) -> dict[str, Any] | None:
    """The sync's last note, or None (not started, or finished)."""
    with engine.connect() as conn:
        return conn.execute(
            select(sync_checkpoints.c.data).where(
                sync_checkpoints.c.job_id == job_id, sync_checkpoints.c.part == PART
            )
        ).scalar()


def chain_status(engine: Engine, get_job, sync: dict, score_registered: bool) -> dict[str, Any]:
    """`{done, total, text}`: the chain's steps done and in all (sync, rebuild(s), score),
    and, while it runs, one pt-BR line for the step under way, e.g.
    "Etapa 1 de 3: buscando as visitas dos anúncios (23 de 60)"."""
    from superseller.mercadolivre.sync import chain_progress

    done, total = chain_progress(get_job, sync, score_registered)
    if done >= total:
        return {"done": done, "total": total, "text": None}
    if sync["status"] != "completed":
        what = STEPS["sync"]
        attempt, tries = sync.get("attempts") or 0, sync.get("max_attempts") or 0
        note = read(engine, sync["id"]) if sync["status"] == "running" else None
        if note and note.get("phase") in PHASES:
            what = PHASES[note["phase"]]
            if note.get("total"):
                what += f" ({number(note.get('done') or 0)} de {number(note['total'])})"
        if sync["status"] == "running" and attempt > 1:
            what += f" · tentativa {attempt} de {tries}"
        if note and note.get("waiting"):
            what += f" · {WAITING}"
        if sync["status"] == "pending" and attempt > 0:  # an attempt ended, the next waits
            what += f" · {RETRYING.format(n=attempt, of=tries)}"
    else:
        result = sync.get("result") or {}
        rebuilds = list(result.get("rebuildJobIds") or [])
        pending = [j for j in rebuilds if get_job(j)["status"] != "completed"]
        what = STEPS["rebuild"] if pending else STEPS["score"]
    return {"done": done, "total": total, "text": f"Etapa {done + 1} de {total}: {what}"}
