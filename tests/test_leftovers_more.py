"""More leftovers of a re-walk: a seller's refresh waiting on a paused queue says it is
paused (not "Atualizando… Etapa 1 de 3" forever); `superseller resume` says which queues
stay paused and how to resume them."""

from __future__ import annotations

import re
from datetime import date

import httpx
import pytest

from superseller.config import Settings
from superseller.jobs import audit, pause
from superseller.metrics.rebuild import rebuild_daily_metrics
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import serving
from tests.support.cli import cli

PASSWORD = "correct horse battery"


@pytest.fixture
def seller(engine, tmp_path):
    """A connected store's seller, signed in over real HTTP, and the registry served."""
    mk.tenant(engine, "t1")
    mk.account(engine, "t1")
    lid = mk.listing(engine, "t1", "MLB-t1", date(2026, 1, 1))
    mk.order(engine, "t1", "o-t1", "2026-01-10T12:00:00-03:00", "paid", [(lid, 1, "10.00")])
    rebuild_daily_metrics(engine, "t1", "2026-01-01", "2026-01-31")
    create_user(engine, "ana@loja1.com", PASSWORD, "seller", "t1")
    settings = Settings(data_dir=tmp_path)
    registry = build_registry(settings)
    with serving(settings, engine, registry) as url:
        with httpx.Client(base_url=url, timeout=30, headers={"Origin": url}) as browser:
            login = {"email": "ana@loja1.com", "password": PASSWORD}
            assert browser.post("/api/v1/auth/login", json=login).status_code == 200
            yield browser, registry


def test_a_refresh_waiting_on_a_paused_queue_says_it_is_paused(seller, engine):
    """`superseller pause --queue default` then "Atualizar dados": the status says
    `paused` (the page's "pausado pela equipe… ficou na fila"), as for the engine's pause,
    and stops saying it once the queue is resumed."""
    browser, registry = seller
    queue = registry.get("sync_mercadolivre").queue
    jid = browser.post("/api/v1/refresh", json={"days": 7}).json()["jobIds"][0]
    status = browser.get(f"/api/v1/refresh/{jid}").json()
    assert (status["state"], status["paused"]) == ("running", False)
    pause.set_queue_paused(engine, "some-other-queue", True)  # not the job's: no effect
    assert browser.get(f"/api/v1/refresh/{jid}").json()["paused"] is False
    pause.set_queue_paused(engine, queue, True, "manutenção")
    status = browser.get(f"/api/v1/refresh/{jid}").json()
    assert (status["state"], status["paused"]) == ("running", True)
    pause.set_queue_paused(engine, queue, False)
    assert browser.get(f"/api/v1/refresh/{jid}").json()["paused"] is False


def test_resume_names_the_queues_still_paused_and_a_queue_not_paused(db_url, engine):
    """A plain `resume` lifts the engine's pause only: it names the queues still paused on
    their own and the command for each. `resume --queue` of a queue not paused says so
    (exit 0, nothing audited); its `--help` speaks of resuming, not pausing."""
    cli(db_url, "pause", "--reason", "deploy", check=True)
    cli(db_url, "pause", "--queue", "slow", check=True)
    out = cli(db_url, "resume", check=True).stdout
    assert pause.state(engine)["paused"] is False
    assert "queues still paused on their own: slow" in out, out
    assert "superseller resume --queue slow" in out, out
    assert [q["queue"] for q in pause.state(engine)["pausedQueues"]] == ["slow"]

    nope = cli(db_url, "resume", "--queue", "nope")
    assert nope.returncode == 0, nope.stderr
    assert "queue nope was not paused" in nope.stdout, nope.stdout
    assert audit.entries(engine, action="queue.resume", target_id="nope") == []
    cli(db_url, "resume", "--queue", "slow", check=True)
    out = cli(db_url, "resume", check=True).stdout
    assert "still paused" not in out, out

    for args in (("resume", "--help"), ("jobs", "resume", "--help")):
        text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", cli(db_url, *args, check=True).stdout).split())
        assert "its jobs wait" not in text, text
        assert "claimed again" in text, text
