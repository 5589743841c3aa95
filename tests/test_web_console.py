"""The operator console in a real browser (Debian's chromium via Playwright) at 1280 and
390 px, on both databases: filters, pages, a job's detail and its actions with confirmation,
run a schedule now and see its job appear live, pause (banner on every page) and resume,
bulk cancel of a filtered set, and the audit trail naming the admin.

Screenshots land in artifacts/screenshots/console-*.png.
"""

import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import insert, select, update

from superseller.config import Settings
from superseller.db.schema import job_logs, jobs
from superseller.jobs import stats
from superseller.jobs.queue import Queue
from superseller.jobs.schedules import Schedules
from superseller.users.accounts import create_user
from tests.support import handlers
from tests.support import marketplace as mk
from tests.support.api import client, drain, serving
from tests.support.browser import ADMIN, PASSWORD, login, shot

WIDTHS = pytest.mark.parametrize("width", [1280, 390])


@pytest.fixture
def console(engine, tmp_path):
    registry = handlers.build_registry()
    stats.register(registry)
    mk.tenant(engine, "t1")
    mk.tenant(engine, "t2")
    create_user(engine, ADMIN, PASSWORD, "admin")
    with serving(Settings(data_dir=tmp_path), engine, registry) as url:
        yield {"url": url, "registry": registry}


def enqueue(engine, registry, n, job_type="noop", tenant="t1", later=True, **options):
    run_at = datetime.now(UTC) + timedelta(days=1) if later else None
    q = Queue(engine, registry)
    return [
        q.enqueue(job_type, {}, tenant_id=tenant, run_at=run_at, **options).id for _ in range(n)
    ]


def fail(engine, ids, error="RuntimeError: boom"):
    """As a worker would have: each attempt logged, the job failed."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            update(jobs)
            .where(jobs.c.id.in_(ids))
            .values(status="failed", attempts=1, last_error=error, finished_at=now)
        )
        for jid in ids:
            conn.execute(
                insert(job_logs).values(
                    job_id=jid,
                    job_type="noop",
                    tenant_id="t1",
                    status="error",
                    attempt=1,
                    started_at=now - timedelta(seconds=2),
                    completed_at=now,
                    duration_ms=2000,
                    records_processed=0,
                    error_message=error,
                )
            )


def status(engine, job_id):
    with engine.connect() as conn:
        return conn.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar_one()


def confirm(page, expected_text):
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(expected_text)
    dialog.get_by_role("button", name="Confirmar").click()


def audited(page, url, action):
    page.goto(f"{url}/jobs/auditoria")
    row = page.locator(f"#audit tr[data-action='{action}']").first
    expect(row).to_contain_text(ADMIN)
    return row


@WIDTHS
def test_filter_page_two_open_a_job_and_retry_it(browser, console, engine, width):
    url, reg = console["url"], console["registry"]
    failed = enqueue(engine, reg, 55)
    fail(engine, failed)
    fail(engine, enqueue(engine, reg, 3, tenant="t2"))
    enqueue(engine, reg, 4)  # pending: filtered out by state
    hopeless = enqueue(engine, reg, 1)[0]
    fail(engine, [hopeless], "PermanentJobError: tenant 't1' has no Mercado Livre account")

    page = login(browser, url, ADMIN, width)
    page.goto(f"{url}/jobs")
    expect(page.locator("h1")).to_have_text("Jobs")
    page.select_option("select[name=state]", "failed")
    page.select_option("select[name=tenantId]", "t1")
    page.get_by_role("button", name="Filtrar").click()
    expect(page.locator("[data-count=failed]")).to_have_text("56")
    expect(page.locator("[data-count=pending]")).to_have_text("4")
    rows = page.locator("#job-rows tr[data-job]")
    expect(rows).to_have_count(50)
    expect(page.locator("#job-rows")).to_contain_text("falhou")
    expect(page.locator("#job-rows")).not_to_contain_text("failed")
    shot(page, "console-jobs", width)

    page.locator("#next-page").click()
    expect(rows).to_have_count(6)
    oldest = min(failed)
    page.locator(f"tr[data-job='{oldest}'] a").click()
    expect(page.locator("h1")).to_contain_text(f"Job #{oldest}")
    expect(page.locator("#job-state")).to_have_text("falhou")
    expect(page.locator("#attempts tr[data-attempt='1']")).to_contain_text("RuntimeError: boom")
    page.get_by_role("button", name="Tentar novamente").click()
    confirm(page, f"Tentar de novo o job #{oldest}")
    expect(page.locator("#outcome")).to_have_text("Job de volta na fila.")
    expect(page.locator("#job-state")).to_have_text("na fila")
    assert status(engine, oldest) == "pending"
    shot(page, "console-job", width)

    # A permanent error: retrying cannot help, so it is not offered.
    page.goto(f"{url}/jobs/{hopeless}")
    expect(page.locator("#permanent-note")).to_be_visible()
    expect(page.get_by_role("button", name="Tentar novamente")).to_have_count(0)
    expect(page.get_by_role("button", name="Executar de novo")).to_be_visible()
    assert audited(page, url, "job.retry").locator("a").inner_text() == f"job #{oldest}"
    shot(page, "console-audit", width)

    page.goto(f"{url}/jobs/graficos")  # the failed attempts, per hour
    expect(page.locator("#throughput rect").first).to_be_attached()
    expect(page.locator("#failures rect").first).to_be_attached()
    expect(page.locator(".legend")).to_contain_text("noop")
    expect(page.locator("main")).to_contain_text("59 no período")
    # attempts, said as such: the Jobs tab counts jobs, and the two must not look alike
    expect(page.locator("main")).to_contain_text("Execuções com falha por hora")
    shot(page, "console-charts", width)
    page.close()


@WIDTHS
def test_attempts_are_numbered_one_to_n_across_retries(browser, console, engine, width):
    url, reg = console["url"], console["registry"]
    [jid] = enqueue(engine, reg, 1)
    fail(engine, [jid])
    fail(engine, [jid], "RuntimeError: again")  # retried once, failed again: attempt 1 twice
    page = login(browser, url, ADMIN, width)
    page.goto(f"{url}/jobs/{jid}")
    expect(page.locator("#attempts tbody tr")).to_have_count(2)
    expect(page.locator("#attempts tr[data-attempt='2']")).to_contain_text("RuntimeError: again")
    expect(page.locator(".history")).to_contain_text("tentativa 2")
    page.close()


@WIDTHS
def test_run_a_schedule_now_and_see_the_job_appear_live(browser, console, engine, width):
    url, reg = console["url"], console["registry"]
    Schedules(engine, reg).create("noite-noop", "noop", "0 3 * * *", deadline_s=600)
    watching = login(browser, url, ADMIN, width)
    watching.goto(f"{url}/jobs")
    expect(watching.locator("#job-rows")).to_contain_text("Nenhum job")

    page = login(browser, url, ADMIN, width)  # a second window
    page.goto(f"{url}/jobs/agendamentos")
    card = page.locator("[data-schedule='noite-noop']")
    card.get_by_role("button", name="Executar agora").click()
    confirm(page, "Executar noite-noop agora?")
    expect(page.locator("#outcome")).to_contain_text("criado para noite-noop")
    with engine.connect() as conn:
        job_id = conn.execute(select(jobs.c.id).where(jobs.c.type == "noop")).scalar_one()
    expect(page.locator("#outcome a")).to_have_attribute("href", f"/jobs/{job_id}")
    page.locator("[data-schedule='noite-noop'] details.ledger summary").click()
    expect(page.locator("[data-schedule='noite-noop'] .ledger")).to_contain_text("run now")
    shot(page, "console-schedules", width)

    # The first page polls: the new job shows up without a reload.
    expect(watching.locator(f"#job-rows tr[data-job='{job_id}']")).to_contain_text(
        "na fila", timeout=15_000
    )
    expect(watching.locator("[data-count=pending]")).to_have_text("1")

    # Edit with validation: a bad cron is refused with the reason, nothing changes.
    page.locator("[data-schedule='noite-noop'] details.edit summary").click()
    page.fill("[data-schedule='noite-noop'] input[name=cron]", "61 * * * *")
    page.locator("[data-schedule='noite-noop'] form[data-edit] button").click()
    confirm(page, "Salvar as mudanças de noite-noop?")
    error = page.locator("[data-schedule='noite-noop'] form[data-edit] .form-error")
    expect(error).to_contain_text("Agendamento inválido: confira a expressão cron")
    assert Schedules(engine, reg).get("noite-noop")["cron"] == "0 3 * * *"
    audited(page, url, "schedule.run_now")
    page.close()
    watching.close()


@WIDTHS
def test_pause_shows_a_banner_on_every_page_then_resume(browser, console, engine, width):
    url = console["url"]
    page = login(browser, url, ADMIN, width)
    page.goto(f"{url}/jobs")
    expect(page.locator("#engine-banner")).to_have_count(0)
    page.fill("#pause-reason", "janela de manutenção")
    page.get_by_role("button", name="Pausar", exact=True).click()
    confirm(page, "Pausar o motor de jobs?")
    expect(page.locator("#outcome")).to_have_text("Motor de jobs pausado.")
    for path in ("/jobs", "/jobs/agendamentos", "/jobs/auditoria", "/jobs/graficos", "/?loja=t1"):
        page.goto(url + path)
        expect(page.locator("#engine-banner")).to_contain_text("janela de manutenção")
    shot(page, "console-paused", width)
    page.goto(f"{url}/jobs")
    page.get_by_role("button", name="Retomar", exact=True).click()
    confirm(page, "Retomar o motor de jobs?")
    expect(page.locator("#outcome")).to_have_text("Motor de jobs retomado.")
    expect(page.locator("#engine-banner")).to_have_count(0)
    audited(page, url, "engine.pause")
    expect(page.locator("#audit tr[data-action='engine.resume']")).to_contain_text(ADMIN)
    page.close()


@WIDTHS
def test_pause_one_queue_banner_on_another_page_then_resume(browser, console, engine, width):
    url, reg = console["url"], console["registry"]
    enqueue(engine, reg, 2, queue="slow")
    page = login(browser, url, ADMIN, width)
    page.goto(f"{url}/jobs")
    expect(page.locator("#queue-banner")).to_have_count(0)
    page.fill("#pause-queue input[name=queue]", "slow")
    page.fill("#pause-queue input[name=reason]", "cota do Mercado Livre")
    page.get_by_role("button", name="Pausar fila").click()
    confirm(page, "Pausar a fila slow?")
    expect(page.locator("#outcome")).to_have_text("Fila slow pausada.")
    expect(page.locator("#outcome")).to_be_in_viewport()  # the reload does not keep the scroll
    expect(page.locator("#queues tr[data-queue='slow']")).to_contain_text("pausada")
    page.locator("#filas").scroll_into_view_if_needed()
    shot(page, "console-queues", width)
    expect(page.locator("#engine-banner")).to_have_count(0)  # the engine itself runs
    for path in ("/jobs/agendamentos", "/?loja=t1"):
        page.goto(url + path)
        banner = page.locator("#queue-banner")
        expect(banner).to_contain_text("slow")
        expect(banner).to_contain_text("cota do Mercado Livre")
        expect(banner).to_contain_text(ADMIN)
    shot(page, "console-queue-paused", width)
    page.locator("#queue-banner a").click()
    page.wait_for_url(f"{url}/jobs#filas")  # loaded: the page's script has wired its buttons
    page.get_by_role("button", name="Retomar fila").click()
    confirm(page, "Retomar a fila slow?")
    expect(page.locator("#outcome")).to_have_text("Fila slow retomada.")
    expect(page.locator("#queue-banner")).to_have_count(0)
    row = audited(page, url, "queue.pause")
    expect(row).to_contain_text("fila slow")
    expect(page.locator("#audit tr[data-action='queue.resume']")).to_contain_text(ADMIN)
    page.close()


@WIDTHS
def test_bulk_cancel_of_a_filtered_set(browser, console, engine, width):
    url, reg = console["url"], console["registry"]
    mine = enqueue(engine, reg, 5, tenant="t1")
    others = enqueue(engine, reg, 3, tenant="t2")
    page = login(browser, url, ADMIN, width)
    page.goto(f"{url}/jobs?state=pending&tenantId=t1")
    button = page.get_by_role("button", name="Cancelar os filtrados")
    button.click()
    confirm(page, "Cancelar 5 job(s) com os filtros atuais?")
    expect(page.locator("#outcome")).to_have_text(
        "5 job(s) cancelado(s), 0 com cancelamento pedido."
    )
    assert {status(engine, j) for j in mine} == {"cancelled"}
    assert {status(engine, j) for j in others} == {"pending"}
    row = audited(page, url, "jobs.cancel")
    expect(row).to_contain_text("jobs filtrados")
    page.close()


def test_a_job_page_hides_secrets_and_sellers_cannot_open_the_console(console, engine):
    url, reg = console["url"], console["registry"]
    create_user(engine, "ana@loja1.com", PASSWORD, "seller", "t1")
    jid = (
        Queue(engine, reg)
        .enqueue(
            "noop",
            {"tenantId": "t1", "accessToken": "APP_USR-s3cr3t", "nested": {"password": "hunter2"}},
        )
        .id
    )
    with httpx.Client(base_url=url) as admin:
        admin.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        html = admin.get(f"/jobs/{jid}").text
        assert "APP_USR-s3cr3t" not in html and "hunter2" not in html
        assert html.count("[REDACTED]") == 2 and "&#34;tenantId&#34;: &#34;t1&#34;" in html
        assert admin.get("/jobs/999999").status_code == 404
        assert admin.get("/jobs?state=exploded").status_code == 200  # said on the page, not a 500
    with httpx.Client(base_url=url) as seller:
        seller.post("/api/v1/auth/login", json={"email": "ana@loja1.com", "password": PASSWORD})
        for path in (
            "/jobs",
            f"/jobs/{jid}",
            "/jobs/agendamentos",
            "/jobs/auditoria",
            "/jobs/graficos",
        ):
            assert seller.get(path).status_code == 403, path


def test_a_bad_filter_is_named_in_portuguese_and_lists_nothing(console, engine):
    """A refused filter says which field and what it must be, shows no jobs (an unfiltered
    list under a filter's heading would mislead), and offers no bulk action on them."""
    enqueue(engine, console["registry"], 3)
    with httpx.Client(base_url=console["url"]) as admin:
        admin.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        ok = admin.get("/jobs", params={"type": "noop"}).text
        assert ok.count('<tr data-job="') == 3 and "Cancelar os filtrados" in ok
        for params, said in (
            ({"createdFrom": "ontem", "type": "noop"}, "“Criado de” precisa ser uma data"),
            ({"finishedTo": "9999-99-99"}, "“Terminou até” precisa ser uma data"),
            ({"type": "nao-existe"}, "tipo de job desconhecido: nao-existe"),
            ({"state": "exploded"}, "estado desconhecido: exploded"),
        ):
            html = admin.get("/jobs", params=params).text
            assert f"Filtro inválido: {said}" in html, params
            assert '<tr data-job="' not in html and "Cancelar os filtrados" not in html
            assert "must be" not in html


def test_the_filter_forms_take_empty_values_and_every_option(console, engine):
    """Submitted as the forms send them: an empty field means "no filter" (the Auditoria's
    "tudo" gave a 422 page), and every option offered is accepted ("fila")."""
    enqueue(engine, console["registry"], 2)
    with client(console["url"], ADMIN) as admin:
        assert admin.post("/api/admin/jobs/queues/pause", json={"queue": "slow"}).is_success
        assert admin.post("/api/admin/jobs/pause", json={}).is_success
        every = admin.get("/jobs/auditoria", params={"actor": "", "targetType": ""})
        assert every.status_code == 200, every.text
        assert 'data-action="queue.pause"' in every.text
        assert 'data-action="engine.pause"' in every.text
        queue = admin.get("/jobs/auditoria", params={"actor": "", "targetType": "queue"})
        assert queue.status_code == 200, queue.text
        assert 'data-action="queue.pause"' in queue.text
        assert 'data-action="engine.pause"' not in queue.text
        html = admin.get("/jobs/auditoria").text
        offered = html.split('name="targetType"')[1].split("</select>")[0]
        for value in offered.split('value="')[2:]:  # the first is "" (tudo)
            v = value.split('"')[0]
            assert admin.get("/jobs/auditoria", params={"targetType": v}).status_code == 200, v
        odd = admin.get("/jobs/auditoria", params={"targetType": "planeta"})
        assert odd.status_code == 200 and "Filtro inválido: “Sobre” desconhecido" in odd.text
        empty = {k: "" for k in ("state", "type", "queue", "tenantId", "createdFrom")}
        jobs_page = admin.get("/jobs", params={**empty, "sort": "created"})
        assert jobs_page.status_code == 200 and "Filtro inválido" not in jobs_page.text
        assert jobs_page.text.count('<tr data-job="') == 2


def test_reversed_dates_say_so_and_show_no_counts(console, engine):
    enqueue(engine, console["registry"], 3)
    with httpx.Client(base_url=console["url"]) as admin:
        admin.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD})
        for start, end in (("createdFrom", "createdTo"), ("finishedFrom", "finishedTo")):
            html = admin.get("/jobs", params={start: "2026-05-10", end: "2026-05-01"}).text
            assert "a data inicial é depois da final" in html, start
            assert "precisa ser uma data" not in html
            # No unfiltered totals beside the empty list, and nothing "ao vivo".
            assert 'data-count="pending"' not in html and "ao vivo" not in html
            assert "Sem contagens: o filtro é inválido." in html


def test_live_rows_and_the_pause_banner_follow_the_engine(browser, console, engine):
    """The reviewer's walk: paused, a job waits; resumed through the API, it completes. The
    open Jobs page and the job's own page follow without a reload by hand."""
    url, reg = console["url"], console["registry"]
    [jid] = enqueue(engine, reg, 1, later=False)
    page = login(browser, url, ADMIN, 1280)
    page.goto(f"{url}/jobs")
    row = page.locator(f"#job-rows tr[data-job='{jid}']")
    expect(row).to_contain_text("na fila")
    detail = login(browser, url, ADMIN, 1280)
    detail.goto(f"{url}/jobs/{jid}")
    expect(detail.locator("#job-state")).to_have_text("na fila")
    with client(url, ADMIN) as api:
        assert api.post("/api/admin/jobs/pause", json={"reason": "teste"}).is_success
        expect(page.locator("#engine-banner")).to_contain_text("teste", timeout=15_000)
        assert api.post("/api/admin/jobs/queues/pause", json={"queue": "slow"}).is_success
        expect(page.locator("#queue-banner")).to_contain_text("slow", timeout=15_000)
        assert api.post("/api/admin/jobs/resume").is_success
        assert api.post("/api/admin/jobs/queues/resume", json={"queue": "slow"}).is_success
    expect(page.locator("#engine-banner")).to_have_count(0, timeout=15_000)
    expect(page.locator("#queue-banner")).to_have_count(0, timeout=15_000)
    expect(page.get_by_role("button", name="Pausar", exact=True)).to_be_visible()
    # A worker (in its own thread: Playwright's loop runs in this one).
    worker = threading.Thread(target=drain, args=(engine, reg))
    worker.start()
    worker.join(30)
    assert status(engine, jid) == "completed"
    expect(row).to_contain_text("concluído", timeout=15_000)
    expect(detail.locator("#job-state")).to_have_text("concluído", timeout=15_000)
    expect(detail.locator("#attempts tr[data-attempt='1']")).to_contain_text("sucesso")
    detail.close()
    page.close()


def test_bulk_retry_promises_only_what_it_requeues(browser, console, engine):
    url, reg = console["url"], console["registry"]
    hopeless = enqueue(engine, reg, 6)
    fail(engine, hopeless, "PermanentJobError: tenant 't1' has no Mercado Livre account")
    page = login(browser, url, ADMIN, 1280)
    page.goto(f"{url}/jobs?tenantId=t1&state=failed")
    expect(page.locator("[data-count=failed]")).to_have_text("6")
    expect(page.get_by_role("button", name="Cancelar os filtrados")).to_be_visible()
    expect(page.get_by_role("button", name="Tentar de novo os filtrados")).to_have_count(0)
    transient = enqueue(engine, reg, 2)
    fail(engine, transient)
    page.reload()
    page.get_by_role("button", name="Tentar de novo os filtrados").click()
    confirm(page, "Tentar de novo 2 job(s) com os filtros atuais?")
    expect(page.locator("#outcome")).to_have_text("2 job(s) de volta na fila.")
    assert {status(engine, j) for j in transient} == {"pending"}
    assert {status(engine, j) for j in hopeless} == {"failed"}
    page.close()


def test_odd_filter_values_are_said_on_the_page(console, engine):
    """A NUL in a filter (PostgreSQL refuses it) is a pt-BR page, not raw JSON; an unknown
    store or queue in the URL shows as selected, not as "todas" over an empty list."""
    enqueue(engine, console["registry"], 1)
    with client(console["url"], ADMIN) as admin:
        for path, params in (
            ("/jobs", {"tenantId": "\x00"}),
            ("/jobs", {"queue": "a\x00b"}),
            ("/jobs/auditoria", {"actor": "\x00"}),
        ):
            r = admin.get(path, params=params, headers={"Accept": "text/html"})
            assert r.status_code == 200 and "caractere nulo" in r.text, (path, params)
            assert "Filtro inválido" in r.text and '<tr data-job="' not in r.text
        html = admin.get("/jobs", params={"tenantId": "t9", "queue": "nenhuma"}).text
        assert '<option value="t9" selected>t9 (loja desconhecida)</option>' in html
        assert '<option value="nenhuma" selected>nenhuma (sem jobs)</option>' in html


def test_a_job_planned_for_later_says_when_not_stuck(console, engine):
    [tomorrow] = enqueue(engine, console["registry"], 1, later=True)
    [due] = enqueue(engine, console["registry"], 1, later=False)
    with client(console["url"], ADMIN) as admin:
        html = admin.get("/jobs").text
    row = {jid: html.split(f'<tr data-job="{jid}"')[1].split("</tr>")[0] for jid in (tomorrow, due)}
    assert "marcado para" in row[tomorrow] and "marcado para" not in row[due]
