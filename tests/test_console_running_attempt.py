"""Who runs what: a running job's page and `jobs list` show the attempt in progress (its
number, worker, start and last heartbeat) and call the last error the previous attempt's;
an attempt cut off before it could count its records says "desconhecido", not 0. Also the
console's numbers in pt-BR (thousands separators, an exact bulk-cancel count past the
1.000 cap) and the listings table's caption in Portuguese. On both databases, over HTTP
(and a real browser for the bulk confirmation)."""

from datetime import UTC, date, datetime, timedelta

from playwright.sync_api import expect
from sqlalchemy import insert

from superseller.db.schema import jobs
from superseller.jobs.clock import ManualClock
from superseller.jobs.queue import Queue
from superseller.jobs.store import JobStore
from superseller.users.accounts import create_user
from superseller.web.console import _when_full
from tests import test_web_console as base
from tests.support import marketplace as mk
from tests.support.api import client
from tests.support.browser import ADMIN, PASSWORD, login
from tests.support.cli import cli

console = base.console  # the same fixture: two stores, an admin, a server on real HTTP


def rescued_then_running(engine, registry):
    """A job whose worker vanished (attempt 1 lost), whose next worker was stopped (run 2
    interrupted, not counted), now running attempt 2 (run 3) on a third worker."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    clock = ManualClock(start)
    jid = Queue(engine, registry, clock).enqueue("sleepy", {"seconds": 60}, tenant_id="t1").id
    store = JobStore(engine, clock)
    assert [c.id for c in store.claim("worker-a:101", 10)] == [jid]
    clock.advance(timedelta(minutes=2))
    assert store.rescue(30, registry.logged_as) == [jid]  # writes the "lost" attempt
    clock.advance(timedelta(minutes=1))
    [second] = store.claim("worker-b:202", 10)
    clock.advance(timedelta(minutes=1))
    assert store.release("worker-b:202", [second], registry.logged_as) == [jid]
    clock.advance(timedelta(minutes=1))
    [third] = store.claim("worker-c:303", 10)
    started = clock.now()
    clock.advance(timedelta(minutes=4, seconds=40))
    assert store.heartbeat("worker-c:303", [jid])[0] == {jid}
    return jid, started, clock.now()


def section(html, marker, end="</section>"):
    return html.split(marker, 1)[1].split(end, 1)[0]


def test_a_running_jobs_page_shows_its_attempt_worker_start_and_heartbeat(console, engine):
    jid, started, beat = rescued_then_running(engine, console["registry"])
    with client(console["url"], ADMIN) as admin:
        html = admin.get(f"/jobs/{jid}").text
    now = section(html, 'id="current-run"')
    assert "Executando agora" in now
    assert "2 de 3" in section(now, 'id="current-attempt"', "</dd>")
    assert "execução nº 3" in now  # the attempts table numbers every run, the lost one too
    assert "worker-c:303" in section(now, 'id="current-worker"', "</dd>")
    assert _when_full(started) in section(now, 'id="current-started"', "</dd>")
    assert "(há 5 min)" in section(now, 'id="current-started"', "</dd>")
    assert _when_full(beat) in section(now, 'id="current-heartbeat"', "</dd>")
    # The rescue's message is the lost attempt's, not the running one's.
    summary = section(html, "<h2>Resumo</h2>")
    assert "Erro da tentativa anterior" in summary and "Último erro" not in summary
    assert "worker lost: no heartbeat" in section(summary, 'id="last-error"', "</dd>")
    # The attempts: lost, interrupted (records unknown, not 0), and the one in progress.
    rows = section(html, 'id="attempts"', "</table>")
    lost = section(rows, 'data-attempt="1"', "</tr>")
    assert "perdido" in lost and "desconhecido" in section(lost, 'data-label="Registros">', "<")
    interrupted = section(rows, 'data-attempt="2"', "</tr>")
    assert "desconhecido" in section(interrupted, 'data-label="Registros">', "<")
    current = section(rows, 'data-attempt="3"', "</tr>")
    assert "executando" in current and "worker-c:303" in current
    assert "tentativa 3 começou (worker-c:303)" in section(html, 'class="history"', "</ol>")


def test_a_finished_job_keeps_its_last_error_and_counted_records(console, engine):
    [jid] = base.enqueue(engine, console["registry"], 1)
    base.fail(engine, [jid], "RuntimeError: boom")
    with client(console["url"], ADMIN) as admin:
        html = admin.get(f"/jobs/{jid}").text
    assert 'id="current-run"' not in html
    assert "Último erro" in section(html, "<h2>Resumo</h2>")
    row = section(html, 'data-attempt="1"', "</tr>")
    assert section(row, 'data-label="Registros">', "<") == "0"  # an error that counted 0


def test_jobs_list_names_the_worker_and_the_previous_attempts_error(console, engine, db_url):
    jid, _, _ = rescued_then_running(engine, console["registry"])
    out = cli(db_url, "jobs", "list", check=True, env={"COLUMNS": "80"}).stdout
    [row] = [line for line in out.splitlines() if f" {jid} " in line]
    assert "running" in row and "worker-c:303" in row
    assert "previous attempt: worker lost: no heartbeat" in row


def test_the_consoles_jobs_list_names_the_worker_and_the_previous_attempts_error(console, engine):
    """The console's Jobs tab says the same as `jobs list` and the job's page: the worker
    of a running job, and its last error as the previous attempt's (it was shown as the
    job's error, in red, beside "executando")."""
    jid, _, _ = rescued_then_running(engine, console["registry"])
    with client(console["url"], ADMIN) as admin:
        html = admin.get("/jobs").text
    row = section(html, f'data-job="{jid}"', "</tr>")
    assert "em worker-c:303" in row
    assert "tentativa anterior: worker lost: no heartbeat" in row


def test_per_queue_and_per_type_counts_have_thousands_separators(console, engine):
    now = datetime.now(UTC)
    row = {"type": "noop", "queue": "default", "payload": {}, "status": "pending"}
    with engine.begin() as conn:
        conn.execute(
            insert(jobs), [{**row, "run_at": now + timedelta(days=1), "created_at": now}] * 1234
        )
    with client(console["url"], ADMIN) as admin:
        html = admin.get("/jobs").text
    queues = section(html, 'id="queues"', "</table>")
    assert '<td class="num">1.234</td>' in queues and "1234" not in queues


def test_bulk_cancel_asks_with_the_exact_count_past_the_cap(browser, console, engine):
    now = datetime.now(UTC)
    row = {"type": "noop", "queue": "default", "payload": {}, "status": "pending"}
    with engine.begin() as conn:
        conn.execute(
            insert(jobs),
            [{**row, "tenant_id": "t1", "run_at": now + timedelta(days=1), "created_at": now}]
            * 1234
            + [{**row, "tenant_id": "t2", "run_at": now + timedelta(days=1), "created_at": now}]
            * 3,
        )
    page = login(browser, console["url"], ADMIN, 1280)
    page.goto(f"{console['url']}/jobs?state=pending&tenantId=t1")
    expect(page.locator("[data-count=pending]")).to_have_text("1.000+")  # the cheap, polled one
    page.get_by_role("button", name="Cancelar os filtrados").click()
    base.confirm(page, "Cancelar 1.234 job(s) com os filtros atuais?")
    expect(page.locator("#outcome")).to_have_text(
        "1.234 job(s) cancelado(s), 0 com cancelamento pedido."
    )
    page.close()


def test_the_listings_tables_caption_is_portuguese(console, engine):
    mk.account(engine, "t1")
    mk.listing(engine, "t1", "MLB1", date(2026, 1, 1))
    create_user(engine, "ana@loja1.com", PASSWORD, "seller", "t1")
    with client(console["url"], "ana@loja1.com") as seller:
        html = seller.get("/anuncios", params={"ordem": "visits", "direcao": "asc"}).text
    caption = section(html, '<caption class="sr-only">', "</caption>")
    assert caption == "Anúncios, ordenados por visitas (menor primeiro)"
