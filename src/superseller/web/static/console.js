// The operator console: confirmations, outcomes, live counts and rows, engine and bulk actions.
"use strict";
const Console = (() => {
  const FILTERS = ["state", "type", "tenantId", "queue", "createdFrom", "createdTo", "finishedFrom", "finishedTo"];
  const ADMIN = "/api/admin/jobs";

  async function api(method, url, body) {
    const r = await fetch(url, {method, credentials: "same-origin",
      headers: body ? {"content-type": "application/json"} : {},
      body: body ? JSON.stringify(body) : undefined});
    let data = null;
    try { data = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) {
      const e = data && data.error;
      if (r.status >= 500) throw new Error(SERVER_ERRORS[r.status] || SERVER_ERRORS[500]);
      if (e && SAID[e.code]) throw new Error(SAID[e.code]);
      const field = e && e.fields && e.fields[0] ? ` (${e.fields[0].field}: ${e.fields[0].problem})` : "";
      throw new Error(((e && e.message) || `erro ${r.status}`) + field);
    }
    return data;
  }
  // The API speaks English; the console says the errors an operator meets in Portuguese.
  const SERVER_ERRORS = {
    500: "Algo deu errado do nosso lado. Tente de novo em instantes.",
    503: "Serviço temporariamente indisponível. Nada foi perdido: tente de novo em instantes.",
  };
  const SAID = {
    invalid_schedule: "Agendamento inválido: confira a expressão cron (5 campos, ex.: 0 6 * * *) e o fuso horário.",
    invalid_transition: "Este job não está mais em um estado que permita essa ação. Recarregue a página.",
    not_found: "Não encontrado: talvez já tenha sido removido. Recarregue a página.",
  };

  function filterQuery() {
    const here = new URLSearchParams(location.search), out = new URLSearchParams();
    FILTERS.forEach(k => { if (here.get(k)) out.set(k, here.get(k)); });
    return out.toString();
  }

  function confirmDialog(text) {
    const dlg = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent = text;
    return new Promise(resolve => {
      dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), {once: true});
      dlg.showModal();
    });
  }

  function say(text, ok, link) {
    const out = document.getElementById("outcome");
    if (!out) return;
    out.replaceChildren(document.createTextNode(text + " "));
    if (link) { const a = document.createElement("a"); a.href = link.href; a.textContent = link.text; out.append(a); }
    out.className = ok ? "ok" : "error";
    out.hidden = false;
  }

  // An outcome that survives the reload showing its effect.
  function sayAfterReload(text, link) {
    sessionStorage.setItem("console-outcome", JSON.stringify({text, link}));
    history.scrollRestoration = "manual";  // the outcome is at the top: show it
    location.reload();
  }
  const kept = sessionStorage.getItem("console-outcome");
  if (kept) { sessionStorage.removeItem("console-outcome"); const k = JSON.parse(kept); say(k.text, true, k.link); }

  // Ask, act, report; `fn` returns [text, link?] or throws.
  function wire(el, fn, event = "click") {
    el.addEventListener(event, async (ev) => {
      ev.preventDefault();
      if (el.disabled) return;
      if (el.dataset.confirm && !(await confirmDialog(el.dataset.confirm))) return;
      el.disabled = true;
      try { await fn(el); }
      catch (e) { say(`Não foi possível: ${e.message}`, false); el.disabled = false; }
    });
  }

  function engine() {
    document.querySelectorAll("[data-action=pause]").forEach(b => wire(b, async () => {
      const reason = (document.getElementById("pause-reason") || {}).value || null;
      await api("POST", `${ADMIN}/pause`, {reason});
      sayAfterReload("Motor de jobs pausado.");
    }));
    document.querySelectorAll("[data-action=resume]").forEach(b => wire(b, async () => {
      await api("POST", `${ADMIN}/resume`);
      sayAfterReload("Motor de jobs retomado.");
    }));
    document.querySelectorAll("[data-action=resume-queue]").forEach(b => wire(b, async () => {
      await api("POST", `${ADMIN}/queues/resume`, {queue: b.dataset.queue});
      sayAfterReload(`Fila ${b.dataset.queue} retomada.`);
    }));
    const form = document.getElementById("pause-queue");
    if (form) form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(form), queue = f.get("queue");
      if (!(await confirmDialog(`Pausar a fila ${queue}? Os jobs dela esperam até retomar; as outras filas continuam.`))) return;
      try {
        await api("POST", `${ADMIN}/queues/pause`, {queue, reason: f.get("reason") || null});
        sayAfterReload(`Fila ${queue} pausada.`);
      } catch (e) { say(`Não foi possível: ${e.message}`, false); }
    });
  }

  function list() {
    engine();
    document.querySelectorAll("[data-bulk]").forEach(b => b.addEventListener("click", async () => {
      const cancel = b.dataset.bulk === "cancel";
      b.disabled = true;
      try {
        // Counted now by the server, exactly (up to 100.000), as the action will touch them:
        // a cancel, pending jobs and running ones not yet asked to stop; a retry, failed or
        // cancelled ones, permanent failures left out.
        const c = await api("GET", `${ADMIN}/counts?${filterQuery()}&${cancel ? "cancellable" : "retryable"}=true`);
        const counted = cancel ? c.cancellable : c.retryable;
        const n = counted.count, more = counted.capped ? "+" : "";
        if (!n) { say(cancel ? "Nenhum job na fila ou executando com esses filtros." : "Nenhum job com esses filtros pode ser tentado de novo (falhas permanentes não são repetidas).", false); return; }
        const ask = `${cancel ? "Cancelar" : "Tentar de novo"} ${n.toLocaleString("pt-BR")}${more} job(s) com os filtros atuais?`;
        if (!(await confirmDialog(ask))) return;
        const r = await api("POST", `${ADMIN}/bulk/${b.dataset.bulk}?${filterQuery()}`);
        const pt = (x) => x.toLocaleString("pt-BR");
        sayAfterReload(cancel
          ? `${pt(r.cancelled)} job(s) cancelado(s), ${pt(r.cancelRequested)} com cancelamento pedido.`
          : `${pt(r.retried)} job(s) de volta na fila.`);
      } catch (e) { say(`Não foi possível: ${e.message}`, false); }
      finally { b.disabled = false; }
    }));
    const live = document.getElementById("live");
    if (!live) return;
    const tick = async () => {
      try {
        // The visible rows' states come back with the counts (by primary key: cheap).
        const shown = [...document.querySelectorAll("#job-rows tr[data-job]")];
        const ids = shown.map(r => r.dataset.job).join(",");
        const c = await api("GET", `${ADMIN}/counts?${filterQuery()}${ids ? `&ids=${ids}` : ""}`);
        // The pause banners and buttons follow the engine (paused elsewhere, or resumed).
        const eng = `${c.engine.paused}|${c.engine.pausedQueues.map(q => q.queue).join(",")}`;
        if (eng !== live.dataset.engine && !document.querySelector("dialog[open]")) {
          location.reload();
          return;
        }
        Object.entries(c.byState).forEach(([s, n]) => {
          const el = document.querySelector(`[data-count=${s}]`);
          if (el) el.textContent = n.toLocaleString("pt-BR") + (c.capped.includes(s) ? "+" : "");
        });
        const moved = shown.some(r => c.jobStates && c.jobStates[r.dataset.job] !== r.dataset.state);
        if (moved || (live.dataset.live === "1" && String(c.latestId || "") !== live.dataset.latest)) {
          const q = new URLSearchParams(location.search); q.set("parcial", "1");
          const html = await (await fetch(`/jobs?${q}`, {credentials: "same-origin"})).text();
          document.getElementById("job-rows").innerHTML = html;
          live.dataset.latest = String(c.latestId || "");
        }
      } catch (_) { /* the next tick tries again */ }
      setTimeout(tick, 2000);
    };
    setTimeout(tick, 2000);
  }

  function job() {
    // While the job waits or runs, follow it: a new state, attempt or start (a rescued job
    // taken again by another worker between two polls keeps its state) reloads the page.
    const tag = document.getElementById("job-state");
    if (tag && ["pending", "running"].includes(tag.dataset.state)) {
      const follow = async () => {
        try {
          const j = await api("GET", `${ADMIN}/${tag.dataset.job}`);
          if ((j.status !== tag.dataset.state || String(j.attempts) !== tag.dataset.attempts
               || (j.startedAt || "") !== tag.dataset.started)
              && !document.querySelector("dialog[open]")) { location.reload(); return; }
        } catch (_) { /* the next poll tries again */ }
        setTimeout(follow, 2000);
      };
      setTimeout(follow, 2000);
    }
    const paths = {execute: "execute", cancel: "cancel", retry: "retry", "run-again": "run-again"};
    document.querySelectorAll("#job-actions [data-action]").forEach(b => wire(b, async () => {
      const r = await api("POST", `${ADMIN}/${b.dataset.job}/${paths[b.dataset.action]}`);
      if (b.dataset.action === "run-again") {
        sayAfterReload(`Novo job #${r.id} criado.`, {href: `/jobs/${r.id}`, text: `Abrir #${r.id}`});
      } else if (b.dataset.action === "cancel") {
        sayAfterReload(r.outcome === "cancelled" ? "Job cancelado." : "Cancelamento pedido; o job para na próxima verificação.");
      } else {
        sayAfterReload(b.dataset.action === "retry" ? "Job de volta na fila." : "Job marcado para executar agora.");
      }
    }));
  }

  function schedules() {
    document.querySelectorAll("[data-action=run-now]").forEach(b => wire(b, async () => {
      const r = await api("POST", `${ADMIN}/schedules/${b.dataset.schedule}/run-now`);
      sayAfterReload(`Job #${r.job.id} criado para ${r.schedule}.`, {href: `/jobs/${r.job.id}`, text: `Abrir #${r.job.id}`});
    }));
    document.querySelectorAll("[data-action=toggle]").forEach(b => wire(b, async () => {
      const on = b.dataset.enabled === "true";
      await api("PATCH", `${ADMIN}/schedules/${b.dataset.schedule}`, {enabled: on});
      sayAfterReload(on ? "Agendamento ligado." : "Agendamento desligado.");
    }));
    const formError = (form, e) => { const p = form.querySelector(".form-error"); p.textContent = e.message; p.hidden = false; };
    document.querySelectorAll("form[data-edit]").forEach(form => form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(form), minutes = f.get("deadlineMinutes");
      const body = {cron: f.get("cron"), timezone: f.get("timezone"), misfirePolicy: f.get("misfirePolicy"),
        overlapPolicy: f.get("overlapPolicy")};
      if (minutes) body.deadlineS = Number(minutes) * 60;
      if (!(await confirmDialog(`Salvar as mudanças de ${form.closest("[data-schedule]").dataset.schedule}?`))) return;
      try { await api("PATCH", `${ADMIN}/schedules/${form.dataset.edit}`, body); sayAfterReload("Agendamento salvo."); }
      catch (e) { formError(form, e); }
    }));
    document.querySelectorAll("form[data-backfill]").forEach(form => form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      if (!(await confirmDialog(`Reprocessar de ${f.get("from")} a ${f.get("to")}? Um job por disparo.`))) return;
      try {
        const r = await api("POST", `${ADMIN}/schedules/${form.dataset.backfill}/backfill`,
          {from: f.get("from"), to: f.get("to"), mode: f.get("mode")});
        sayAfterReload(`${r.enqueued.length} job(s) enfileirado(s).`);
      } catch (e) { formError(form, e); }
    }));
  }

  return {list, job, schedules, api};
})();
