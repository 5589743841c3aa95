// SuperSeller pages: login, "Atualizar dados", the chart, and the admin's job buttons.
"use strict";
const SuperSeller = (() => {
  async function api(method, url, body) {
    const r = await fetch(url, {method, credentials: "same-origin",
      headers: body ? {"content-type": "application/json"} : {},
      body: body ? JSON.stringify(body) : undefined});
    let data = null;
    try { data = await r.json(); } catch (_) { /* not JSON */ }
    if (!r.ok) {
      const msg = (data && data.error && data.error.message) || `erro ${r.status}`;
      throw new Error(msg);
    }
    return data;
  }

  const login = document.getElementById("login-form");
  if (login) {
    login.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const out = document.getElementById("login-error");
      out.hidden = true;
      const f = new FormData(login);
      try {
        await api("POST", "/api/v1/auth/login", {email: f.get("email"), password: f.get("password")});
        location.href = "/";
      } catch (e) {
        out.textContent = e.message === "wrong email or password" ? "E-mail ou senha incorretos." :
          e.message.startsWith("too many") ? "Muitas tentativas; espere um minuto." : e.message;
        out.hidden = false;
      }
    });
  }

  function chart() {
    const el = document.getElementById("chart");
    if (!el || !window.Plotly) return;
    const s = JSON.parse(el.dataset.series);
    const x = s.map(d => d.date);
    Plotly.newPlot(el, [
      {x, y: s.map(d => d.revenue), type: "bar", name: "Receita (R$)", marker: {color: "#3483fa"}},
      {x, y: s.map(d => d.orders), type: "scatter", mode: "lines+markers", name: "Pedidos",
       yaxis: "y2", line: {color: "#00a650"}},
      // null visits are gaps (unknown), never zeros
      {x, y: s.map(d => d.visits), type: "scatter", mode: "lines+markers", name: "Visitas",
       yaxis: "y3", connectgaps: false, line: {color: "#ff7733", dash: "dot"}},
    ], {
      margin: {l: 50, r: 50, t: 10, b: 40}, height: 320, legend: {orientation: "h", y: -0.2},
      xaxis: {tickformat: "%d/%m", type: "date"},
      yaxis: {title: "R$", rangemode: "tozero"},
      yaxis2: {overlaying: "y", side: "right", rangemode: "tozero", showgrid: false},
      yaxis3: {overlaying: "y", side: "right", rangemode: "tozero", showgrid: false, visible: false},
      separators: ",.",
    }, {responsive: true, displayModeBar: false, locale: "pt-BR"});
  }

  function overview() {
    chart();
    const btn = document.getElementById("refresh");
    const status = document.getElementById("refresh-status");
    if (!btn) return;
    btn.addEventListener("click", async () => {
      if (btn.disabled) return;          // a double click starts one refresh
      btn.disabled = true;
      btn.classList.add("loading");
      status.textContent = "Atualizando… buscando pedidos e visitas no Mercado Livre";
      const q = btn.dataset.tenant ? `?tenantId=${encodeURIComponent(btn.dataset.tenant)}` : "";
      try {
        const started = await api("POST", `/api/v1/refresh${q}`, {days: Number(btn.dataset.days)});
        for (;;) {
          await new Promise(r => setTimeout(r, 1000));
          const st = await api("GET", started.statusUrl + q);
          if (st.state === "done") { status.textContent = "Dados atualizados."; location.reload(); return; }
          if (st.state === "failed") throw new Error(st.message || "a atualização falhou");
          status.textContent = st.rebuild ? "Atualizando… recalculando as métricas" :
            "Atualizando… buscando pedidos e visitas no Mercado Livre";
        }
      } catch (e) {
        status.textContent = `Não foi possível atualizar. ${e.message}`;
        status.classList.add("error");
        btn.disabled = false;
        btn.classList.remove("loading");
      }
    });
  }

  function jobs() {
    document.querySelectorAll("[data-retry]").forEach(b => b.addEventListener("click", async () => {
      b.disabled = true;
      try { await api("POST", `/api/admin/jobs/${b.dataset.retry}/retry`); location.reload(); }
      catch (e) { b.disabled = false; alert(`Não foi possível: ${e.message}`); }
    }));
    document.querySelectorAll("[data-toggle-schedule]").forEach(c => c.addEventListener("change", async () => {
      c.disabled = true;
      try { await api("PATCH", `/api/admin/jobs/schedules/${c.dataset.toggleSchedule}`, {enabled: c.checked}); location.reload(); }
      catch (e) { c.checked = !c.checked; c.disabled = false; alert(`Não foi possível: ${e.message}`); }
    }));
  }

  return {overview, jobs};
})();
