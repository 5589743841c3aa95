"""Disconnecting a store's Mercado Livre account (API, CLI), declining at Mercado Livre,
and the import's progress as the seller reads it."""

import httpx
import pytest
from sqlalchemy import func, select

from superseller.db.schema import jobs, listings, marketplace_accounts, orders, sync_checkpoints
from superseller.jobs.clock import SystemClock
from superseller.jobs.queue import Queue
from superseller.mercadolivre import progress
from superseller.mercadolivre.account_state import account_state
from superseller.mercadolivre.sync import connected_tenants
from superseller.metrics.freshness import tenant_freshness
from superseller.tenants import create_tenant
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support.api import PASSWORD, client, serving
from tests.support.cli import cli
from tests.support.inproc import running_worker, wait_status
from tests.support.ml import connected_tenant, run_sync, sandbox, settings_for


@pytest.fixture
def stores(engine, tmp_path):
    """t1 connected to the sandbox seller and imported; t2 a second store; a seller of
    each and an admin, logged in over real HTTP."""
    with sandbox(listings=5, history_days=10) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings, "t1")
        registry = build_registry(settings)
        assert run_sync(engine, registry, days_back=5)["status"] == "completed"
        create_tenant(engine, "Loja Dois", tenant_id="t2")
        create_user(engine, "ana@loja1.com", PASSWORD, "seller", "t1")
        create_user(engine, "bia@loja2.com", PASSWORD, "seller", "t2")
        create_user(engine, "ops@superseller.dev", PASSWORD, "admin")
        with serving(settings, engine, registry) as url:
            settings.ml_redirect_uri = f"{url}/api/v1/mercadolivre/callback"
            yield {"url": url, "sb": sb, "settings": settings, "registry": registry}


def count(engine, table, tenant="t1"):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).where(table.c.tenant_id == tenant)).scalar()


def authorize(browser, sb, tenant=None):
    """connect -> the sandbox approves -> the callback URL (not followed)."""
    start = browser.get(
        "/api/v1/mercadolivre/connect", params={"tenantId": tenant} if tenant else None
    )
    assert start.status_code == 303, start.text
    return httpx.get(start.headers["location"]).headers["location"]


def test_the_owner_disconnects_and_the_data_stays(stores, engine):
    url = stores["url"]
    kept = (count(engine, listings), count(engine, orders))
    assert kept[0] == 5 and kept[1] > 0
    with client(url, "bia@loja2.com") as other:  # another store's seller
        r = other.delete("/api/v1/mercadolivre/connection", params={"tenantId": "t1"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        # a store that does not exist answers the same: no probing for ids
        r = other.delete("/api/v1/mercadolivre/connection", params={"tenantId": "nope"})
        assert r.status_code == 403
    assert count(engine, marketplace_accounts) == 1
    with client(url, "ana@loja1.com") as ana:
        r = ana.delete("/api/v1/mercadolivre/connection")
        assert r.status_code == 200, r.text
        assert r.json() == {
            "tenantId": "t1",
            "mlUserIds": [r.json()["mlUserIds"][0]],
            "connection": "not_connected",
        }
        again = ana.delete("/api/v1/mercadolivre/connection")
        assert again.status_code == 409 and again.json()["error"]["code"] == "not_connected"
        fresh = ana.get("/api/v1/freshness").json()
        assert fresh["connection"] == "not_connected" and fresh["label"] == "Não conectado"
        page = ana.get("/", headers={"accept": "text/html"}).text
        assert 'data-state="disconnected"' in page and 'data-key="revenue"' in page
    with engine.connect() as conn:  # the tokens are gone with the account row
        assert conn.execute(select(marketplace_accounts)).all() == []
    assert (count(engine, listings), count(engine, orders)) == kept
    assert account_state(engine, "t1") == "disconnected"
    assert tenant_freshness(engine, "t1", stores["sb"].state.spec.start)["status"] == (
        "not_connected"
    )
    # The nightly fan-out leaves the store out; a sync queued for it ends as skipped.
    assert connected_tenants(engine) == []
    jid = (
        Queue(engine, stores["registry"])
        .enqueue("sync_mercadolivre", {"tenantId": "t1", "daysBack": 1}, tenant_id="t1")
        .id
    )
    with running_worker(engine, stores["registry"]):
        done = wait_status(engine, jid, "completed", "failed", timeout=30)
    assert done["status"] == "completed" and done["result"] == {"skipped": "not_connected"}
    with engine.connect() as conn:  # nothing queued behind it
        assert (
            conn.execute(
                select(func.count()).where(jobs.c.type != "sync_mercadolivre", jobs.c.id > jid)
            ).scalar()
            == 0
        )
    with client(url, "ana@loja1.com") as ana:
        st = ana.get(f"/api/v1/refresh/{jid}").json()
        assert st["state"] == "failed" and st["message"].startswith("Conecte sua conta")


def test_after_disconnecting_the_account_connects_to_another_store_and_back(stores, engine):
    url, sb = stores["url"], stores["sb"]
    with client(url, "bia@loja2.com") as bia:
        refused = bia.get(authorize(bia, sb), headers={"accept": "text/html"})
        assert refused.status_code == 409
        # a seller may not see the other store's name: a neutral text
        assert "já está conectada a outra loja" in refused.text and "Loja t1" not in refused.text
    with client(url, "ops@superseller.dev") as admin:  # an admin is told where, by name
        refused = admin.get(authorize(admin, sb, "t2"), headers={"accept": "text/html"})
        assert refused.status_code == 409 and "Desconecte-a na loja “Loja t1”" in refused.text
        assert (
            admin.delete("/api/v1/mercadolivre/connection", params={"tenantId": "t1"}).status_code
            == 200
        )
    with client(url, "bia@loja2.com") as bia:
        done = bia.get(authorize(bia, sb))
        assert done.status_code == 303 and "importacao=" in done.headers["location"]
        assert bia.delete("/api/v1/mercadolivre/connection").status_code == 200
    with client(url, "ana@loja1.com") as ana:  # and back to the first store
        assert ana.get(authorize(ana, sb)).status_code == 303
    with engine.connect() as conn:
        rows = conn.execute(
            select(marketplace_accounts.c.tenant_id, marketplace_accounts.c.status)
        ).all()
    assert rows == [("t1", "connected")]
    assert account_state(engine, "t1") == "connected"  # synced before: no "importing" again


def test_declining_at_mercado_livre_offers_to_connect_again(stores, engine):
    url, sb = stores["url"], stores["sb"]
    with client(url, "bia@loja2.com") as bia:
        state = httpx.URL(authorize(bia, sb)).params["state"]
        denied = f"/api/v1/mercadolivre/callback?error=access_denied&error_description={'x' * 3000}"
        page = bia.get(f"{denied}&state={state}", headers={"accept": "text/html"})
        assert page.status_code == 400  # not 422: Mercado Livre's own redirect is answered
        assert "Você não autorizou o acesso" in page.text
        assert 'href="/api/v1/mercadolivre/connect?tenantId=t2"' in page.text
        assert "Conectar de novo" in page.text
        # the state was used up; a forged or missing one is refused like before
        again = bia.get(f"{denied}&state={state}")
        assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_oauth_state"
        forged = bia.get(
            "/api/v1/mercadolivre/callback?error=access_denied&state=x",
            headers={"accept": "text/html"},
        )
        assert forged.status_code == 400 and "Conectar de novo" in forged.text
        assert bia.get("/api/v1/mercadolivre/callback").status_code == 400
        # another error from Mercado Livre: a generic text, the same button
        state = httpx.URL(authorize(bia, sb)).params["state"]
        other = bia.get(
            f"/api/v1/mercadolivre/callback?error=server_error&state={state}",
            headers={"accept": "text/html"},
        )
        assert other.status_code == 400 and "não concluiu a autorização" in other.text
        assert "Conectar de novo" in other.text
        state = httpx.URL(authorize(bia, sb)).params["state"]
        api = bia.get(f"/api/v1/mercadolivre/callback?error=access_denied&state={state}")
        assert api.json()["error"]["code"] == "mercadolivre_declined"
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).where(marketplace_accounts.c.tenant_id == "t2")
            ).scalar()
            == 0
        )


def test_cli_disconnects_a_store(stores, engine, db_url, tmp_path):
    env = {"DATA_DIR": str(tmp_path)}
    out = cli(db_url, "ml", "disconnect", "--tenant", "t1", env=env)
    assert out.returncode == 0, out.stderr
    assert "tenant t1 disconnected from Mercado Livre" in out.stdout
    assert count(engine, marketplace_accounts) == 0 and count(engine, listings) == 5
    again = cli(db_url, "ml", "disconnect", "--tenant", "t1", env=env)
    lines = again.stderr.strip().splitlines()
    assert again.returncode == 1 and len(lines) == 1
    assert "has no Mercado Livre account" in lines[0]
    assert "token" not in (out.stdout + out.stderr).lower()


def test_the_sync_notes_its_progress_within_the_step(engine, tmp_path, monkeypatch):
    """Each phase is noted, the counts move up to the total, and the note goes at the end;
    the seller reads it as "Etapa 1 de 3: …", the same words for both imports."""
    notes = []
    write = progress.ProgressNote.write

    def recording(self, phase, done=None, total=None):
        notes.append((phase, done, total))
        write(self, phase, done, total)

    monkeypatch.setattr(progress.ProgressNote, "write", recording)
    monkeypatch.setattr(progress, "EVERY_S", 0.0)
    with sandbox(listings=7, history_days=5) as sb:
        settings = settings_for(sb, tmp_path)
        connected_tenant(engine, settings, "t1")
        registry = build_registry(settings)
        done = run_sync(engine, registry, days_back=3)
    assert done["status"] == "completed", done["last_error"]
    phases = list(dict.fromkeys(p for p, _, _ in notes))
    assert phases == ["listing", "items", "orders", "visits"]
    visits = [d for p, d, t in notes if p == "visits"]
    assert visits == list(range(0, 8)) and {t for p, _, t in notes if p == "visits"} == {7}
    assert [d for p, d, _ in notes if p == "items"][-1] == 7
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).where(sync_checkpoints.c.job_id == done["id"])
            ).scalar()
            == 0
        )
    # what a running sync with a note reads as
    sync = {"id": done["id"], "status": "running", "result": None}
    progress.ProgressNote(engine, done["id"], SystemClock()).write("visits", 1234, 5000)
    status = progress.chain_status(engine, lambda j: {}, sync, True)
    assert status == {
        "done": 0,
        "total": 3,
        "text": "Etapa 1 de 3: buscando as visitas dos anúncios (1.234 de 5.000)",
    }


def test_reconnecting_with_another_login_is_refused_and_says_which_account(stores, engine):
    """The store's grant was revoked; the seller reconnects, but signs in at Mercado Livre
    with another login. The store keeps its one account (a second one beside it left every
    sync on the revoked one, while the page said "Conectada"): a 409 page naming both
    accounts and both ways on; with the store's own login, the reconnection works."""
    url, sb = stores["url"], stores["sb"]
    linked = sb.state.spec.user_id
    httpx.post(f"{sb.url}/_sandbox/login-as", json={"user_id": 987654321}).raise_for_status()
    with client(url, "ana@loja1.com") as ana:
        page = ana.get(authorize(ana, sb), headers={"accept": "text/html"})
        assert page.status_code == 409, page.text
        assert "Outra conta do Mercado Livre" in page.text
        assert f"ligada à conta {linked}" in page.text and "987654321" in page.text
        httpx.post(f"{sb.url}/_sandbox/login-as", json={"user_id": 987654321})
        api = ana.get(authorize(ana, sb))
        assert api.status_code == 409
        assert api.json()["error"]["code"] == "mercadolivre_other_account"
        with engine.connect() as conn:
            rows = conn.execute(select(marketplace_accounts.c.ml_user_id)).scalars().all()
        assert rows == [linked]  # nothing stored for the other login
        again = ana.get(authorize(ana, sb))  # the store's own login
        assert again.status_code == 303 and "importacao=" in again.headers["location"]
    assert account_state(engine, "t1") == "connected"
