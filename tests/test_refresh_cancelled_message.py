"""An operator cancelling the seller's "Atualizar dados" (`superseller jobs cancel N`) is not
a failure: the refresh status tells the seller, in pt-BR, that the update was cancelled and
that "Atualizar dados" fetches again, not that Mercado Livre "falhou" and to call support.
A sync that did fail still says "falhou"."""

from __future__ import annotations

import httpx
from sqlalchemy import update

from superseller.db.schema import jobs
from superseller.jobs.admin import JobAdmin
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support.api import client, serving
from tests.support.inproc import running_worker
from tests.support.ml import connected_tenant, sandbox, settings_for
from tests.support.waiting import wait_until

SELLER = "ana@loja1.com"
CANCELLED = (
    "A atualização foi cancelada (etapa 1 de 3); clique em Atualizar dados para buscar de novo."
)


def _start(c) -> tuple[int, str]:
    started = c.post("/api/v1/refresh", json={"days": 8})
    assert started.status_code == 202, started.text
    return started.json()["jobIds"][0], started.json()["statusUrl"]


def _status(c, status_url: str) -> dict:
    st = c.get(status_url)
    assert st.status_code == 200, st.text
    return st.json()


def _ended(c, status_url: str) -> dict:
    def ended():
        st = _status(c, status_url)
        return st if st["state"] != "running" else None

    return wait_until(ended, timeout=120, interval=0.2, message="the refresh to end")


def test_a_cancelled_refresh_says_cancelled_and_a_failed_one_still_says_failed(engine, tmp_path):
    with sandbox(listings=5) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings)
        registry = build_registry(settings)
        create_user(engine, SELLER, "correct horse battery", "seller", "t1")
        admin = JobAdmin(engine)
        with serving(settings, engine, registry) as url, client(url, SELLER) as c:
            # Cancelled while queued (no worker yet): `jobs cancel` ends it at once.
            job_id, status_url = _start(c)
            assert admin.cancel(job_id) == "cancelled"
            st = _status(c, status_url)
            assert st["state"] == "failed" and st["sync"] == "cancelled", st
            assert st["cancelled"] is True  # the dashboard drops "Não foi possível atualizar"
            assert st["message"] == CANCELLED, st
            assert "falhou" not in st["message"] and "suporte" not in st["message"]

            # Cancelled while running: the worker stops it at the operator's request.
            httpx.post(f"{sb.url}/_sandbox/faults", json={"latency_ms": 400})
            job_id, status_url = _start(c)
            with running_worker(engine, registry):
                wait_until(
                    lambda: admin.get(job_id)["status"] == "running",
                    timeout=60,
                    interval=0.05,
                    message="the sync to start",
                )
                assert admin.cancel(job_id) == "cancel_requested"
                st = _ended(c, status_url)
            assert st["sync"] == "cancelled", st
            assert st["message"] == CANCELLED, st
            httpx.post(f"{sb.url}/_sandbox/faults", json={})

            # A sync that failed (its last attempt ended in error, as the worker records it)
            # keeps the failure message.
            job_id, status_url = _start(c)
            with engine.begin() as conn:
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id)
                    .values(status="failed", last_error="MLServerError: 500")
                )
            st = _status(c, status_url)
            assert st["state"] == "failed" and st["sync"] == "failed", st
            assert st["cancelled"] is False
            assert st["message"].startswith(
                "A busca de pedidos e visitas no Mercado Livre falhou (etapa 1 de 3)."
            ), st
