/* The editor's Fixtures pane: lists the script's test fixtures with the verdict
   of their last run, runs them (all, or one) against a chosen version and
   follows their runs until each has passed or shows its first difference. */
(function () {
  "use strict";
  const Okto = window.Okto;
  const cfg = Okto.pageData("editor-config");
  const list = document.getElementById("fixtures-list");
  if (!cfg || !list) return;
  const summary = document.getElementById("fixtures-summary");
  const runAll = document.getElementById("fixtures-run-all");
  const versionSel = document.getElementById("fixtures-version");
  const base = "/api/scripts/" + cfg.scriptId;
  let timer = null;

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => e.setAttribute(k, v));
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function verdict(last) {
    if (!last) return el("span", { class: "badge plain" }, "not run");
    if (!last.final) return el("span", { class: "badge running" }, "running");
    if (last.passed) return el("span", { class: "badge succeeded fixture-verdict" }, "passed");
    return el("span", { class: "badge failed fixture-verdict" }, last.diverged ? "diverged" : "failed");
  }

  function row(f) {
    const item = el("div", { class: "fixture", "data-name": f.name });
    item.style.cssText = "border-bottom:1px solid var(--line);padding:6px 0";
    const head = el("div");
    head.style.cssText = "display:flex;gap:6px;align-items:center";
    head.appendChild(el("span", { class: "mono fixture-name" }, f.name));
    head.appendChild(el("span", { class: "muted", style: "font-size:12px;margin-right:auto" },
      f.calls + " call" + (f.calls === 1 ? "" : "s") + " · must " +
      (f.expected_status === "succeeded" ? "return " + JSON.stringify(f.expected_result) : "end " + f.expected_status)));
    head.appendChild(verdict(f.last_run));
    if (cfg.canRun) {
      const b = el("button", { class: "btn small", type: "button", title: "Run this fixture" }, "Run");
      b.addEventListener("click", () => start([f.name]));
      head.appendChild(b);
    }
    if (cfg.canEdit) {
      const d = el("button", { class: "btn small danger", type: "button", title: "Delete this fixture" }, "✕");
      d.addEventListener("click", async () => {
        if (!window.confirm("Delete fixture " + f.name + "?")) return;
        try { await Okto.api("DELETE", base + "/fixtures/" + encodeURIComponent(f.name)); } catch (e) { summary.textContent = e.message; }
        refresh();
      });
      head.appendChild(d);
    }
    item.appendChild(head);
    const last = f.last_run;
    if (last) {
      const info = el("div", { style: "font-size:12px" });
      const link = el("a", { href: "/runs/" + last.run_id + "/" }, "run" + (last.version ? " on v" + last.version : ""));
      info.appendChild(link);
      if (last.final && !last.passed) {
        info.appendChild(document.createTextNode(": "));
        info.appendChild(el("span", { class: "error fixture-difference" }, last.difference));
      }
      item.appendChild(info);
    }
    return item;
  }

  function show(fixtures) {
    list.replaceChildren();
    if (!fixtures.length) {
      list.appendChild(el("div", { class: "muted" }, "No fixtures yet."));
      if (runAll) runAll.disabled = true;
      summary.textContent = "";
      return false;
    }
    if (runAll) runAll.disabled = false;
    fixtures.forEach(f => list.appendChild(row(f)));
    const ran = fixtures.filter(f => f.last_run && f.last_run.final);
    const passed = ran.filter(f => f.last_run.passed).length;
    const running = fixtures.some(f => f.last_run && !f.last_run.final);
    summary.textContent = running ? "Running…" :
      ran.length ? passed + " of " + fixtures.length + " passed" + (ran.length < fixtures.length ? " (" + (fixtures.length - ran.length) + " not run)" : "") : "";
    return running;
  }

  async function refresh() {
    clearTimeout(timer);
    let data;
    try { data = await Okto.api("GET", base + "/fixtures"); } catch (e) { summary.textContent = e.message; return; }
    if (show(data.results)) timer = setTimeout(refresh, 700);
  }

  async function start(names) {
    const body = {};
    if (names) body.names = names;
    if (versionSel && versionSel.value) body.version = parseInt(versionSel.value, 10);
    try { await Okto.api("POST", base + "/fixture-runs", body); } catch (e) { summary.textContent = e.message; return; }
    refresh();
  }

  if (runAll) runAll.addEventListener("click", () => start(null));
  refresh();
})();
