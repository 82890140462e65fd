/* The run console: streams a run's output over a WebSocket and renders the
   returned value. Used by the editor and the run page. */
(function () {
  "use strict";

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function clock(epoch) {
    const d = new Date(epoch * 1000);
    const p = (n, w) => String(n).padStart(w || 2, "0");
    return p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds()) + "." + p(d.getMilliseconds(), 3);
  }

  const CALL_RE = /^(\S+)(?: (.+?))?: ([\d.]+) ms, (ok|failed)$/;

  function isRecord(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }

  function scalar(v) {
    if (v === null || v === undefined) return el("span", "nil", "nil");
    if (typeof v === "string") return el("span", "str", v);
    if (typeof v === "number") return el("span", "num", String(v));
    if (typeof v === "boolean") return el("span", "bool", String(v));
    return el("span", "", String(v));
  }

  function size(v) { return Array.isArray(v) ? v.length : Object.keys(v).length; }

  /* A value as HTML: array of records -> grid, map -> key/value rows, nested
     tables folded in <details>. */
  function renderValue(v, depth) {
    depth = depth || 0;
    if (v === null || typeof v !== "object") return scalar(v);
    if (depth > 0) {
      const d = el("details", "nested");
      d.appendChild(el("summary", "", (Array.isArray(v) ? "array" : "table") + " · " + size(v) + " item" + (size(v) === 1 ? "" : "s")));
      d.addEventListener("toggle", function once() {
        if (d.open && d.children.length === 1) d.appendChild(renderTable(v, depth));
      });
      return d;
    }
    return renderTable(v, depth);
  }

  function renderTable(v, depth) {
    const table = el("table", "value");
    if (Array.isArray(v) && v.length && v.every(isRecord)) {
      const cols = [];
      v.forEach(r => Object.keys(r).forEach(k => { if (!cols.includes(k) && cols.length < 40) cols.push(k); }));
      const head = el("tr");
      head.appendChild(el("th", "", "#"));
      cols.forEach(c => head.appendChild(el("th", "", c)));
      table.appendChild(head);
      v.forEach((r, i) => {
        const tr = el("tr");
        tr.appendChild(el("td", "key", String(i + 1)));
        cols.forEach(c => { const td = el("td"); if (c in r) td.appendChild(renderValue(r[c], depth + 1)); tr.appendChild(td); });
        table.appendChild(tr);
      });
      return table;
    }
    const entries = Array.isArray(v) ? v.map((x, i) => [String(i + 1), x]) : Object.entries(v);
    if (!entries.length) { const t = el("div", "nil", "empty table"); return t; }
    entries.forEach(([k, x]) => {
      const tr = el("tr");
      tr.appendChild(el("td", "key", k));
      const td = el("td"); td.appendChild(renderValue(x, depth + 1)); tr.appendChild(td);
      table.appendChild(tr);
    });
    return table;
  }

  /* opts: {output, statusEl, resultEl, onJump(line), onEnd(msg), cancelBtn} */
  function RunConsole(runId, opts) {
    this.runId = runId;
    this.opts = opts;
    this.lastSeq = 0;
    this.status = null;
    this.ended = false;
    this.retries = 0;
    this.opts.output.innerHTML = "";
    this.connect();
  }

  RunConsole.prototype.connect = function () {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const pending = this.opts.pending && !this.connectedOnce ? "&pending=1" : "";
    const ws = new WebSocket(proto + location.host + "/ws/runs/" + this.runId + "/?after=" + this.lastSeq + pending);
    this.ws = ws;
    ws.onmessage = (ev) => this.handle(JSON.parse(ev.data));
    ws.onopen = () => { this.retries = 0; this.connectedOnce = true; };
    ws.onclose = (ev) => {
      if (this.ended || this.closed) return;
      if (ev.code === 4403 || ev.code === 4404) { this.refused(ev.code === 4403 ? "Not allowed to watch this run." : "No such run."); return; }
      // Refused before it ever opened (the server's origin or sign-in check):
      // retrying cannot help, say so at once.
      if (!this.connectedOnce) { this.refused("Not allowed: the server refused this run's console (signed out?)."); return; }
      this.retries += 1;
      if (this.retries > 20) { this.system("Lost the connection to the server."); return; }
      setTimeout(() => this.connect(), Math.min(5000, 250 * this.retries));
    };
  };

  RunConsole.prototype.close = function () { this.closed = true; if (this.ws) this.ws.close(); };

  RunConsole.prototype.refused = function (text) {
    this.closed = true;
    this.dropPlaceholder();
    this.system(text);
    if (this.opts.onRefused) this.opts.onRefused(text);
  };

  RunConsole.prototype.dropPlaceholder = function () {
    const ph = this.opts.output.querySelector(".placeholder");
    if (ph) ph.remove();
  };

  RunConsole.prototype.system = function (text) {
    const line = el("div", "line system");
    line.appendChild(el("span", "t", clock(Date.now() / 1000)));
    line.appendChild(el("span", "x", text));
    this.opts.output.appendChild(line);
  };

  RunConsole.prototype.handle = function (msg) {
    if (msg.type === "lines") msg.lines.forEach(l => this.line(l));
    else if (msg.type === "run" || msg.type === "status") this.setStatus(msg.status || msg.run.status, msg);
    else if (msg.type === "end") this.end(msg);
    else if (msg.type === "error") this.system(msg.message);
  };

  RunConsole.prototype.line = function (l) {
    if (l.seq <= this.lastSeq) return;  // never twice
    this.lastSeq = l.seq;
    const out = this.opts.output;
    const stick = out.scrollTop + out.clientHeight >= out.scrollHeight - 30;
    const ph = out.querySelector(".placeholder"); if (ph) ph.remove();
    const row = el("div", "line " + l.stream + (l.level ? " " + l.level : ""));
    row.dataset.seq = l.seq;
    row.appendChild(el("span", "t", clock(l.time)));
    const call = l.stream === "call" && l.text.match(CALL_RE);
    if (call) {
      // "send_cwmp_message SN1: 12.3 ms, ok": the call, then its latency
      row.appendChild(el("span", "x", "→ " + call[1] + (call[2] ? " " + call[2] : "")));
      const lat = el("span", "lat" + (call[4] === "ok" ? "" : " failed"), call[3] + " ms" + (call[4] === "ok" ? "" : " · failed"));
      row.appendChild(lat);
    } else {
      if (l.stream === "log" && l.level) row.appendChild(el("span", "lvl", "[" + l.level + "]"));
      row.appendChild(el("span", "x", l.text));
    }
    out.appendChild(row);
    if (stick) out.scrollTop = out.scrollHeight;
  };

  const STAGE = { queued: 0, running: 1, listening: 2 };
  function stage(status) { return status in STAGE ? STAGE[status] : 3; }

  RunConsole.prototype.setStatus = function (status, msg) {
    if (this.status && stage(status) < stage(this.status)) return;  // statuses only move forward
    this.status = status;
    if (this.opts.statusEl) {
      const s = this.opts.statusEl;
      s.className = "badge " + status;
      s.textContent = status.replace("_", " ");
    }
    if (this.opts.cancelBtn) this.opts.cancelBtn.disabled = !["queued", "running", "listening"].includes(status);
    if (this.opts.onStatus) this.opts.onStatus(status, msg);
  };

  function isBareCancel(message) { return !message || /^cancell?ed\.?$/i.test(message); }

  /* "Cancelled before it started", never "Cancelled: cancelled". */
  function errorText(e) {
    const message = String(e.message || "").trim();
    if (e.kind !== "cancelled") return "Error: " + message;
    if (isBareCancel(message)) return "Cancelled.";
    return /^cancell?ed\b/i.test(message) ? message.charAt(0).toUpperCase() + message.slice(1) : "Cancelled: " + message;
  }

  RunConsole.prototype.end = function (msg) {
    this.ended = true;
    this.dropPlaceholder();
    this.setStatus(msg.status, msg);
    if (msg.error) {
      const e = msg.error;
      const row = el("div", "line failure");
      row.appendChild(el("span", "t", msg.finished ? clock(msg.finished) : ""));
      const x = el("span", "x");
      if (e.line) {
        const a = el("a", "", "line " + e.line);
        a.href = "#L" + e.line;
        a.addEventListener("click", (ev) => { ev.preventDefault(); if (this.opts.onJump) this.opts.onJump(e.line); });
        const kind = { limit: "Limit exceeded at ", cancelled: "Cancelled at " }[e.kind] || "Error at ";
        x.appendChild(document.createTextNode(kind));
        x.appendChild(a);
        // "script:3: attempt to…": the line is the link already
        const rest = String(e.message).replace(/^[^:\n]*:\d+: /, "");
        x.appendChild(document.createTextNode(e.kind === "cancelled" && isBareCancel(rest) ? "." : ": " + rest));
      } else {
        x.textContent = errorText(e);
      }
      row.appendChild(x);
      this.opts.output.appendChild(row);
      this.opts.output.scrollTop = this.opts.output.scrollHeight;
    }
    if (this.opts.resultEl) showResult(this.opts.resultEl, msg);
    if (this.opts.onEnd) this.opts.onEnd(msg);
    if (this.ws) this.ws.close();
  };

  function showResult(box, msg) {
    box.innerHTML = "";
    const head = el("div", "result-head");
    head.appendChild(el("h2", "", "Result"));
    const metrics = msg.metrics || {};
    if (metrics.duration_s !== undefined) head.appendChild(el("span", "muted", (metrics.duration_s * 1000).toFixed(1) + " ms"));
    const toggle = el("button", "btn small", "Raw JSON");
    toggle.type = "button";
    head.appendChild(toggle);
    box.appendChild(head);
    const table = el("div", "result-table");
    const raw = el("pre", "json");
    raw.style.display = "none";
    if (msg.result === null || msg.result === undefined) table.appendChild(el("div", "nil", msg.status === "succeeded" ? "The script returned nothing." : "No result."));
    else table.appendChild(renderValue(msg.result, 0));
    raw.textContent = JSON.stringify(msg.result === undefined ? null : msg.result, null, 2);
    toggle.addEventListener("click", () => {
      const showRaw = raw.style.display === "none";
      raw.style.display = showRaw ? "" : "none";
      table.style.display = showRaw ? "none" : "";
      toggle.textContent = showRaw ? "Table" : "Raw JSON";
    });
    box.appendChild(table);
    box.appendChild(raw);
  }

  window.Okto = window.Okto || {};
  window.Okto.RunConsole = RunConsole;
  window.Okto.renderValue = renderValue;
  window.Okto.showResult = showResult;
  /* A random (version 4) UUID, also where crypto.randomUUID is missing (plain http). */
  window.Okto.uuid4 = function () {
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, x => x.toString(16).padStart(2, "0")).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  };
  window.Okto.csrf = function () {
    const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  };
  window.Okto.api = async function (method, url, body) {
    const res = await fetch(url, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": window.Okto.csrf() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await res.json(); } catch (e) { data = { error: "the server answered " + res.status }; }
    if (!res.ok) throw new Error(data && data.error ? data.error : "the server answered " + res.status);
    return data;
  };
})();
