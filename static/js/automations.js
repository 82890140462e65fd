// Automation pages: every change goes through the REST API (roles and audit apply there).
(function () {
  "use strict";
  const api = (method, url, body) => window.Okto.api(method, url, body);
  function fail(e) {
    const el = document.getElementById("auto-error");
    el.textContent = e.message || String(e);
    el.style.display = "";
  }
  async function act(fn) { try { await fn(); } catch (e) { fail(e); } }
  function formData(form) {
    const out = {};
    new FormData(form).forEach((v, k) => { out[k] = typeof v === "string" ? v.trim() : v; });
    return out;
  }
  function scriptFields(f) {
    const out = { script_id: parseInt(f.script_id, 10), version: f.version ? parseInt(f.version, 10) : null };
    if (f.args) out.args = JSON.parse(f.args);
    return out;
  }
  function filterOf(f) {
    const filter = {};
    for (const k of ["status", "vendor", "product_class", "text"]) if (f[k]) filter[k] = k === "status" ? parseInt(f[k], 10) : f[k];
    return filter;
  }
  function on(selector, fn) {
    document.querySelectorAll(selector).forEach((el) => el.addEventListener("click", () => act(() => fn(el))));
  }
  function submit(id, fn) {
    const form = document.getElementById(id);
    if (form) form.addEventListener("submit", (ev) => { ev.preventDefault(); act(() => fn(formData(form), form)); });
  }
  function common() {
    on("[data-toggle-schedule]", async (el) => {
      await api("PATCH", "/api/schedules/" + el.dataset.toggleSchedule, { enabled: el.dataset.enabled !== "true" });
      location.reload();
    });
    on("[data-deployment]", async (el) => {
      await api("POST", "/api/deployments/" + el.dataset.deployment + "/" + el.dataset.action);
      location.reload();
    });
  }
  function index() {
    common();
    on("[data-toggle-trigger]", async (el) => {
      await api("PATCH", "/api/triggers/" + el.dataset.toggleTrigger, { enabled: el.dataset.enabled !== "true" });
      location.reload();
    });
    on("[data-delete-trigger]", async (el) => {
      if (!confirm("Delete this trigger?")) return;
      await api("DELETE", "/api/triggers/" + el.dataset.deleteTrigger);
      location.reload();
    });
    submit("new-schedule", async (f) => {
      await api("POST", "/api/schedules", Object.assign(scriptFields(f), {
        name: f.name, cron: f.cron, timezone: f.timezone || "UTC", missed: f.missed }));
      location.reload();
    });
    submit("new-deployment", async (f) => {
      const d = await api("POST", "/api/deployments", Object.assign(scriptFields(f), { name: f.name }));
      location.href = "/automations/deployments/" + d.id + "/";
    });
    submit("new-trigger", async (f) => {
      await api("POST", "/api/triggers", Object.assign(scriptFields(f), {
        name: f.name, kind: f.kind, event: f.event, device_filter: filterOf(f) }));
      location.reload();
    });
    submit("rollout-policy", async (f) => {
      await api("PUT", "/api/bulk-runs/policy", {
        approval_above: f.approval_above === "" ? null : parseInt(f.approval_above, 10) });
      location.reload();
    });
    submit("new-bulk", async (f) => {
      const int = (v) => parseInt(v || "0", 10);
      const b = await api("POST", "/api/bulk-runs", Object.assign(scriptFields(f), {
        device_filter: filterOf(f), concurrency: parseInt(f.concurrency, 10),
        canary: int(f.canary), wave_size: int(f.wave_size), wave_percent: int(f.wave_percent),
        wave_pause_s: int(f.wave_pause_s),
        failure_threshold: f.failure_threshold === "" || f.failure_threshold === undefined ? null : parseFloat(f.failure_threshold) }));
      location.href = "/automations/bulk/" + b.id + "/";
    });
    const form = document.getElementById("new-schedule");
    if (form) {
      let timer = null;
      const preview = document.getElementById("cron-preview");
      const update = async () => {
        const f = formData(form);
        if (!f.cron) { preview.textContent = ""; return; }
        try {
          const r = await api("POST", "/api/schedules/preview", { cron: f.cron, timezone: f.timezone || "UTC", count: 5 });
          preview.textContent = "Next runs: " + r.next.join(" · ");
        } catch (e) { preview.textContent = e.message; }
      };
      form.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(update, 300); });
    }
  }
  function schedule() {
    common();
    submit("edit-schedule", async (f, form) => {
      await api("PATCH", "/api/schedules/" + form.dataset.id, { cron: f.cron, timezone: f.timezone, missed: f.missed });
      location.reload();
    });
    on("#delete-schedule", async (el) => {
      if (!confirm("Delete this schedule?")) return;
      await api("DELETE", "/api/schedules/" + el.dataset.id);
      location.href = "/automations/";
    });
  }
  function deployment() {
    common();
    on("#delete-deployment", async (el) => {
      if (!confirm("Delete this deployment?")) return;
      await api("DELETE", "/api/deployments/" + el.dataset.id);
      location.href = "/automations/";
    });
    setTimeout(() => location.reload(), 5000);  // state, counts and output stay current
  }
  function text(value) { return value === null || value === undefined ? "" : (typeof value === "string" ? value : JSON.stringify(value)); }
  function showWaves(b) {
    const body = document.getElementById("bulk-waves");
    if (!body) return;
    body.replaceChildren(...b.waves.map((w) => {
      const tr = document.createElement("tr");
      const done = ["succeeded", "failed", "cancelled", "stopped", "lost", "limit_exceeded"]
        .reduce((n, s) => n + (w.by_status[s] || 0), 0);
      const failed = done - (w.by_status.succeeded || 0);
      const state = w.wave < b.current_wave || done === w.total ? "done" : (w.wave === b.current_wave ? "current" : "waiting");
      [w.canary ? "canary" : String(w.wave), String(w.total), String(w.by_status.succeeded || 0), String(failed), state]
        .forEach((c) => { const td = document.createElement("td"); td.textContent = c; tr.appendChild(td); });
      return tr;
    }));
    const reason = document.getElementById("bulk-reason");
    reason.textContent = b.stop_reason ? "Stopped: " + b.stop_reason : (b.status === "approval" ? "Awaiting the approval of a second person." : (b.next_wave_at ? "Next wave at " + b.next_wave_at : ""));
    const approved = document.getElementById("bulk-approved");
    approved.textContent = b.approved_by ? "Approved by " + b.approved_by + " at " + b.approved_at : "";
  }
  function bulk(config) {
    const url = "/api/bulk-runs/" + config.id;
    const select = document.getElementById("bulk-filter");
    function show(b) {
      const p = b.progress;
      document.getElementById("bulk-bar").style.width = p.percent + "%";
      document.getElementById("bulk-status").textContent = b.status;
      document.getElementById("bulk-counts").textContent = p.done + " of " + p.total + " done (" + p.percent + "%) · " +
        Object.entries(p.by_status).filter(([, n]) => n).map(([s, n]) => n + " " + s).join(" · ");
      const body = document.getElementById("bulk-items");
      body.replaceChildren(...b.items.map((i) => {
        const tr = document.createElement("tr");
        const cells = [i.serial, i.status, String(i.attempts), i.error || text(i.result)];
        cells.forEach((c, n) => { const td = document.createElement("td"); td.textContent = c; if (n === 2) td.className = "num"; tr.appendChild(td); });
        const td = document.createElement("td");
        if (i.run_id) { const a = document.createElement("a"); a.href = "/runs/" + i.run_id + "/"; a.textContent = i.run_id.slice(0, 8); td.appendChild(a); }
        tr.appendChild(td);
        return tr;
      }));
      showWaves(b);
      const live = ["running", "paused", "approval"].includes(b.status);
      const stop = document.getElementById("bulk-stop");
      if (stop) stop.disabled = !live;
      const toggle = (id, shown) => { const el = document.getElementById(id); if (el) el.style.display = shown ? "" : "none"; };
      toggle("bulk-pause", b.status === "running");
      toggle("bulk-resume", b.status === "paused");
      toggle("bulk-approve", b.status === "approval");
      return live || b.status === "stopping";
    }
    // One polling loop: a new poll (filter changed, stop, retry) replaces the pending
    // one, and an answer that arrives after a newer request was made is dropped
    // (else a slow answer for the previous filter would replace the rows).
    let timer = null;
    let latest = 0;
    async function poll() {
      clearTimeout(timer);
      const mine = ++latest;
      try {
        const b = await api("GET", url + (select.value ? "?status=" + select.value : ""));
        if (mine === latest && show(b)) timer = setTimeout(poll, 1000);
      } catch (e) {
        if (mine === latest) { fail(e); timer = setTimeout(poll, 5000); }
      }
    }
    show(config.initial);
    poll();
    select.addEventListener("change", poll);
    on("#bulk-stop", async () => { await api("POST", url + "/stop"); poll(); });
    on("#bulk-pause", async () => { await api("POST", url + "/pause"); poll(); });
    on("#bulk-resume", async () => { await api("POST", url + "/resume"); poll(); });
    on("#bulk-approve", async () => { await api("POST", url + "/approve"); poll(); });
    on("#bulk-retry", async () => { const r = await api("POST", url + "/retry"); if (!r.retried) fail(new Error("nothing to retry")); poll(); });
  }
  window.OktoAutomations = { index, schedule, deployment, bulk };
  // Which page this is: the script element says (no inline script may call it).
  const page = document.currentScript && document.currentScript.dataset.page;
  if (page === "bulk") bulk(window.Okto.pageData("bulk-config"));
  else if (page) window.OktoAutomations[page]();
})();
