// SuperSeller pages: login, "Atualizar dados", the chart, and the admin's job buttons.
"use strict";
const SuperSeller = (() => {
  // A call to our API. A failure throws an Error whose `status` (0: no answer), `code` and
  // `apiMessage` are the API's; its `message` is never shown as it is: `failure` words it.
  async function api(method, url, body) {
    let r;
    try {
      r = await fetch(url, {method, credentials: "same-origin",
        headers: body ? {"content-type": "application/json"} : {},
        body: body ? JSON.stringify(body) : undefined});
    } catch (e) {  // offline, or the server did not answer
      throw Object.assign(new Error(String(e)), {status: 0, code: "", apiMessage: ""});
    }
    let data = null;
    try { data = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) {
      const err = (data && data.error) || {};
      throw Object.assign(new Error(err.message || `erro ${r.status}`), {
        status: r.status, code: err.code || "", apiMessage: err.message || "",
        retryAfter: r.headers.get("retry-after"),
      });
    }
    return data;
  }
  // The server's own failures, in the page's words (the API's messages are in English).
  const SERVER_ERRORS = {
    500: "Algo deu errado do nosso lado. Tente de novo em instantes.",
    502: "Não conseguimos falar com o Mercado Livre. Tente de novo.",
    503: "Serviço temporariamente indisponível. Nada foi perdido: tente de novo em instantes.",
  };

  // Retry-After (seconds or an HTTP date) as "30 segundos" / "2 minutos"; "" if unreadable.
  function waitText(retryAfter) {
    if (!retryAfter) return "";
    let s = /^\d+$/.test(retryAfter.trim()) ? Number(retryAfter) :
      Math.round((Date.parse(retryAfter) - Date.now()) / 1000);
    if (!Number.isFinite(s)) return "";
    s = Math.max(s, 1);
    if (s <= 90) return `${s} ${s === 1 ? "segundo" : "segundos"}`;
    const m = Math.ceil(s / 60);
    return `${m} minutos`;
  }

  // What a failed `api` call says to the seller, in pt-BR: `action` is the infinitive that
  // failed ("atualizar"). The API's own message (English) is shown only for the error codes
  // the caller names in `own` as written for the seller (true), or `own` gives the text.
  // `login`: the session ended, the text asks to sign in again (and `say` links /entrar).
  function failure(e, action, own = {}) {
    const mine = Object.hasOwn(own, e.code) && own[e.code];
    if (mine && e.status) {
      return {text: typeof mine === "string" ? mine : `Não foi possível ${action}: ${e.apiMessage}`};
    }
    if (e.status === 401) return {text: `Sua sessão expirou. Entre de novo para ${action}.`, login: true};
    if (e.status === 403 && e.code === "cross_origin_refused") {
      return {text: `Não foi possível ${action}. Recarregue a página e tente de novo.`};
    }
    if (e.status === 403) return {text: `Não foi possível ${action}: sua conta não tem permissão para isso.`};
    if (e.status === 429) {
      const wait = waitText(e.retryAfter);
      return {text: `Muitas tentativas. ${wait ? `Espere ${wait}` : "Espere um pouco"} e tente de novo.`};
    }
    if (e.status >= 500) return {text: `Não foi possível ${action}: ${SERVER_ERRORS[e.status] || SERVER_ERRORS[500]}`};
    return {text: `Não foi possível ${action} agora. Tente de novo em instantes.`};
  }

  // `failure`'s text in `el`; an ended session's "Entre de novo" is a link to the login page.
  function say(el, f) {
    el.textContent = f.text;
    if (!f.login) return;
    const [before, after] = f.text.split("Entre de novo");
    const a = document.createElement("a");
    const here = location.pathname + location.search;  // where the login returns
    a.href = here === "/" ? "/entrar" : `/entrar?volta=${encodeURIComponent(here)}`;
    a.textContent = "Entre de novo";
    el.replaceChildren(before, a, after);
  }

  // A table wider than the screen scrolls inside its box; the keyboard must reach it too.
  function scrollables() {
    document.querySelectorAll(".scroll").forEach(box => {
      if (box.scrollWidth > box.clientWidth && !box.hasAttribute("tabindex")) {
        box.tabIndex = 0;
        box.setAttribute("role", "region");
        const h = box.closest("section")?.querySelector("h2");
        box.setAttribute("aria-label", h ? `${h.textContent.trim()} (role para o lado)` : "Tabela (role para o lado)");
      }
    });
  }
  scrollables();
  addEventListener("resize", scrollables);
  document.addEventListener("toggle", scrollables, true);  // a <details> opened

  const login = document.getElementById("login-form");
  if (login) {
    login.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const out = document.getElementById("login-error");
      out.hidden = true;
      const f = new FormData(login);
      try {
        await api("POST", "/api/v1/auth/login", {email: f.get("email"), password: f.get("password")});
        location.href = login.dataset.back || "/";  // the page that sent here (a path of ours)
      } catch (e) {
        say(out, failure(e, "entrar", {
          invalid_credentials: "E-mail ou senha incorretos.",
          too_many_attempts: "Muitas tentativas; espere um minuto.",
        }));
        out.hidden = false;
      }
    });
  }

  const brl = (v) => "R$\u00a0" + Math.abs(v).toLocaleString("pt-BR", {minimumFractionDigits: 2, maximumFractionDigits: 2});
  const signed = (v, text) => (v > 0 ? "+" : v < 0 ? "\u2212" : "") + text;

  // Period figures plus today's: what a refresh can change.
  function snapshot() {
    const val = (sel, attr) => Number((document.querySelector(sel) || {dataset: {}}).getAttribute?.(attr) || 0);
    return {
      orders: val(".kpi[data-key=orders]", "data-value") + val("#today", "data-orders"),
      revenue: val(".kpi[data-key=revenue]", "data-value") + val("#today", "data-revenue"),
    };
  }

  function showChanges(status) {
    const saved = sessionStorage.getItem("superseller-refresh");
    if (!saved) return;
    sessionStorage.removeItem("superseller-refresh");
    const before = JSON.parse(saved), now = snapshot();
    const dOrders = now.orders - before.orders;
    const dRevenue = Math.round((now.revenue - before.revenue) * 100) / 100;
    const parts = [];
    if (dOrders) parts.push(signed(dOrders, `${Math.abs(dOrders)} ${Math.abs(dOrders) === 1 ? "pedido" : "pedidos"}`));
    if (dRevenue) parts.push(signed(dRevenue, brl(dRevenue)));
    status.textContent = parts.length ? `Dados atualizados: ${parts.join(", ")}.` : "Dados atualizados: nenhuma venda nova.";
    status.dataset.changes = parts.join(", ");
    // A sync that left listings without visits ("Parcial"): the refresh's own words say so.
    if (before.notice) {
      status.textContent += ` ${before.notice}`;
      status.classList.add("partial");
    }
  }

  // The overview follows new data without a reload: a cheap version poll, and when it
  // changes the figures are swapped in place, with a subtle "novo pedido" cue.
  const LIVE_PARTS = ["#freshness", "#today", ".cards", "#other-listings", "#explain",
    "section[aria-labelledby=chart-h]", "section[aria-labelledby=top-h]"];
  function live() {
    const cue = document.getElementById("live-cue");
    if (!cue) return;
    const q = cue.dataset.tenant ? `?tenantId=${encodeURIComponent(cue.dataset.tenant)}` : "";
    const every = Number(cue.dataset.interval || 5) * 1000;
    const today = document.getElementById("today");
    let version = null;
    let orders = today && today.dataset.orders !== "" ? Number(today.dataset.orders) : null;
    let hide = null;
    const tick = async () => {
      try {
        if (!document.hidden) {
          const v = await api("GET", `/api/v1/metrics/version${q}`);
          const more = orders !== null && v.ordersToday > orders ? v.ordersToday - orders : 0;
          if ((version !== null && v.version !== version) || more) await swap();
          version = v.version;
          orders = v.ordersToday;
          if (more) {
            cue.textContent = more === 1 ? "Novo pedido" : `${more} novos pedidos`;
            cue.dataset.orders = String(v.ordersToday);
            cue.hidden = false;
            clearTimeout(hide);
            hide = setTimeout(() => { cue.hidden = true; }, 15000);
          }
        }
      } catch (_) { /* offline for a moment: try again at the next tick */ }
      setTimeout(tick, every);
    };
    setTimeout(tick, 500);
  }

  async function served() {  // this page as the server renders it now, or null
    const r = await fetch(location.href, {credentials: "same-origin"});
    return r.ok ? new DOMParser().parseFromString(await r.text(), "text/html") : null;
  }

  async function swap() {
    const doc = await served();
    if (doc) swapFrom(doc);
  }

  // A refresh or an import that failed: the page as the server sees it now. When the
  // store's state changed (it must reconnect), its buttons and cards change too: the page
  // is reloaded and says the failure again there; otherwise the live parts are swapped in.
  const FAILED = "superseller-failed";
  async function afterFailure(text) {
    const doc = await served();
    if (!doc) return;
    const state = d => (d.querySelector("#onboarding") || {dataset: {}}).dataset.state || "";
    if (state(doc) !== state(document)) {
      sessionStorage.setItem(FAILED, text);
      location.reload();
      return;
    }
    swapFrom(doc);
  }

  function sayLastFailure() {
    const text = sessionStorage.getItem(FAILED);
    if (!text) return;
    sessionStorage.removeItem(FAILED);
    const note = document.createElement("p");
    note.className = "error";
    note.id = "last-failure";
    note.setAttribute("role", "alert");
    note.textContent = text;
    const where = document.getElementById("onboarding");
    if (where) where.appendChild(note);
    else document.querySelector("main").prepend(note);
  }

  function swapFrom(doc) {
    for (const sel of LIVE_PARTS) {
      const old = document.querySelector(sel), fresh = doc.querySelector(sel);
      if (old && fresh) old.replaceWith(document.importNode(fresh, true));
    }
    scrollables();
  }

  // The import under way (the first one, or where connecting lands): its step, moving
  // within the sync, from the same status the "Atualizar dados" button follows.
  function importProgress() {
    const line = document.getElementById("importing");
    if (!line) {
      if (document.querySelector("#onboarding[data-state=importing]")) setTimeout(() => location.reload(), 4000);
      return;
    }
    const q = line.dataset.tenant ? `?tenantId=${encodeURIComponent(line.dataset.tenant)}` : "";
    const step = document.getElementById("import-step");
    const tick = async () => {
      try {
        const st = await api("GET", `/api/v1/refresh/${line.dataset.job}${q}`);
        if (st.state === "done") { location.reload(); return; }
        if (st.state === "failed") {
          line.textContent = `A importação não terminou. ${st.message || ""}`;
          line.classList.replace("neutral", "stale");
          afterFailure(line.textContent).catch(() => {});
          return;
        }
        if (st.steps.text) step.textContent = st.steps.text;
      } catch (_) { /* offline for a moment: try again */ }
      setTimeout(tick, 1500);
    };
    setTimeout(tick, 1000);
  }

  // "Desconectar": asks first (a dialog), then the API; the page then shows the store
  // as disconnected, its data kept.
  function disconnect() {
    const btn = document.getElementById("disconnect");
    const dialog = document.getElementById("disconnect-dialog");
    if (!btn || !dialog) return;
    const status = document.getElementById("disconnect-status");
    btn.addEventListener("click", () => { dialog.returnValue = ""; dialog.showModal(); });
    dialog.addEventListener("close", async () => {
      if (dialog.returnValue !== "confirm") return;
      btn.disabled = true;
      status.classList.remove("error");
      status.textContent = "Desconectando…";
      const q = btn.dataset.tenant ? `?tenantId=${encodeURIComponent(btn.dataset.tenant)}` : "";
      try {
        await api("DELETE", `/api/v1/mercadolivre/connection${q}`);
        location.href = btn.dataset.tenant ? `/?loja=${encodeURIComponent(btn.dataset.tenant)}` : "/";
      } catch (e) {
        btn.disabled = false;
        say(status, failure(e, "desconectar"));
        status.classList.add("error");
      }
    });
  }

  function overview() {
    sayLastFailure();
    live();
    importProgress();
    disconnect();
    const btn = document.getElementById("refresh");
    const status = document.getElementById("refresh-status");
    if (!btn) return;
    showChanges(status);
    const stop = (text, isError) => {
      status.textContent = text;
      status.classList.remove("partial");  // the last refresh's notice, not this one's
      status.classList.toggle("error", Boolean(isError));
      btn.disabled = false;
      btn.classList.remove("loading");
    };
    btn.addEventListener("click", async () => {
      if (btn.disabled) return;          // a double click starts one refresh
      btn.disabled = true;
      btn.classList.add("loading");
      status.classList.remove("error", "partial");
      status.textContent = "Atualizando…";
      const q = btn.dataset.tenant ? `?tenantId=${encodeURIComponent(btn.dataset.tenant)}` : "";
      const before = snapshot();
      try {
        const started = await api("POST", `/api/v1/refresh${q}`, {days: Number(btn.dataset.days)});
        for (;;) {
          const st = await api("GET", started.statusUrl + q);
          if (st.state === "done") {
            sessionStorage.setItem("superseller-refresh", JSON.stringify({...before, notice: st.message || ""}));
            status.textContent = "Dados atualizados.";
            location.reload();
            return;
          }
          if (st.state === "failed") {
            // A cancel (the team's, not a failure) says only what the message says.
            stop(st.cancelled ? st.message : `Não foi possível atualizar. ${st.message || ""}`, true);
            afterFailure(status.textContent).catch(() => {});
            return;
          }
          if (st.paused) {
            return stop("O processamento está pausado pela equipe do SuperSeller: sua atualização " +
              "ficou na fila e roda sozinha quando ele for retomado. Nada se perde.", true);
          }
          status.textContent = `Atualizando… ${st.steps.text || ""}`;
          await new Promise(r => setTimeout(r, 1000));
        }
      } catch (e) {
        stop("", true);
        // The refresh's own refusal (a store without an account) is written for the seller.
        say(status, failure(e, "atualizar", {not_connected: true}));
      }
    });
  }

  function jobs() {
    document.querySelectorAll("[data-retry]").forEach(b => b.addEventListener("click", async () => {
      b.disabled = true;
      try { await api("POST", `/api/admin/jobs/${b.dataset.retry}/retry`); location.reload(); }
      catch (e) { b.disabled = false; alert(failure(e, "repetir o job").text); }
    }));
    document.querySelectorAll("[data-toggle-schedule]").forEach(c => c.addEventListener("change", async () => {
      c.disabled = true;
      try { await api("PATCH", `/api/admin/jobs/schedules/${c.dataset.toggleSchedule}`, {enabled: c.checked}); location.reload(); }
      catch (e) { c.checked = !c.checked; c.disabled = false; alert(failure(e, "mudar o agendamento").text); }
    }));
  }

  function listings() {
    // A thumbnail that cannot load leaves a grey square, not a broken image.
    document.querySelectorAll("img.thumb").forEach(img => {
      const hide = () => { const s = document.createElement("span"); s.className = "thumb"; img.replaceWith(s); };
      if (img.complete && img.naturalWidth === 0) hide(); else img.addEventListener("error", hide);
    });
    document.querySelectorAll("select[data-clip]").forEach(sel => {
      let previous = sel.value;
      sel.addEventListener("change", async () => {
        const row = sel.closest("tr");
        const out = row.querySelector(".clip-status");
        const q = sel.dataset.tenant ? `?tenantId=${encodeURIComponent(sel.dataset.tenant)}` : "";
        const value = sel.value === "" ? null : sel.value === "true";
        sel.disabled = true;
        out.textContent = "Salvando…";
        out.classList.remove("error");
        try {
          const r = await api("PUT", `/api/v1/listings/${sel.dataset.clip}/clips${q}`, {hasClips: value});
          row.querySelector(".score-value").textContent = r.score ?? "—";
          const grade = row.querySelector(".grade");
          if (grade) grade.textContent = r.grade || "";
          const first = (r.actions && r.actions[0] && r.actions[0].text) || "—";
          row.querySelector(".first-action").textContent = first;
          out.textContent = `Salvo: nota ${r.score ?? "—"}.`;
          previous = sel.value;
        } catch (e) {
          sel.value = previous;
          say(out, failure(e, "salvar"));
          out.classList.add("error");
        } finally {
          sel.disabled = false;
        }
      });
    });
  }

  return {overview, listings, jobs};
})();
