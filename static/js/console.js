/* The run console: follows a run over a WebSocket (its lines into a LogList,
   its status, its end, its value into the result box). Used by the editor and
   the run page; needs loglist.js and results.js. */
(function () {
  "use strict";

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function clock(epoch) { return window.Okto.clock(epoch); }  // loglist.js

  const TAIL = 2000;  // stored lines a console asks for when it opens
  const NEVER_OPENED_TRIES = 3;  // reconnections of a console that never opened

  /* opts: {output, statusEl, resultEl, onJump(line), onEnd(msg), onRefused(text),
     cancelBtn, pending, placeholder, tools}. The lines go to a LogList
     (loglist.js), which holds them by seq and draws only the visible ones. */
  function RunConsole(runId, opts) {
    this.runId = runId;
    this.opts = opts;
    this.status = null;
    this.ended = false;
    this.retries = 0;
    this.list = new window.Okto.LogList(opts.output, { runId: runId, tools: opts.tools, placeholder: opts.placeholder });
    this.connect();
  }

  /* Lines the browser has: every one up to the highest seq it was sent. */
  Object.defineProperty(RunConsole.prototype, "lastSeq", { get() { return this.list.count; } });

  RunConsole.prototype.connect = function () {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const pending = this.opts.pending && !this.connectedOnce ? "&pending=1" : "";
    // Only the last TAIL stored lines come over the socket; earlier ones are
    // fetched by the list when they scroll into view.
    const url = proto + location.host + "/ws/runs/" + this.runId + "/?after=" + this.lastSeq + "&tail=" + TAIL + pending;
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onmessage = (ev) => this.handle(JSON.parse(ev.data));
    ws.onopen = () => { this.retries = 0; this.connectedOnce = true; };
    ws.onclose = (ev) => {
      if (this.ended || this.closed) return;
      if (ev.code === 4403 || ev.code === 4404) { this.refused(ev.code === 4403 ? "Not allowed to watch this run." : "No such run."); return; }
      this.retries += 1;
      // Closed before it ever opened: the server's origin check refuses that
      // way, but so does a connection that failed on the way, and a browser
      // cannot tell them apart. A few quick tries, then say so.
      if (!this.connectedOnce && this.retries > NEVER_OPENED_TRIES) { this.refused("Not allowed: the server refused this run's console (signed out?)."); return; }
      if (this.retries > 20) { this.system("Lost the connection to the server."); return; }
      setTimeout(() => this.connect(), Math.min(5000, 250 * this.retries));
    };
  };

  RunConsole.prototype.close = function () { this.closed = true; if (this.ws) this.ws.close(); };

  RunConsole.prototype.refused = function (text) {
    this.closed = true;
    this.system(text);
    if (this.opts.onRefused) this.opts.onRefused(text);
  };

  RunConsole.prototype.system = function (text) {
    const line = el("div", "line system");
    line.appendChild(el("span", "t", clock(Date.now() / 1000)));
    line.appendChild(el("span", "x", text));
    this.list.note(line);
  };

  RunConsole.prototype.handle = function (msg) {
    if (msg.type === "lines") this.list.add(msg.lines);
    else if (msg.type === "run" || msg.type === "status") {
      if (msg.type === "run") this.list.setStart(msg.started);
      this.setStatus(msg.status || msg.run.status, msg);
    }
    else if (msg.type === "end") this.end(msg);
    else if (msg.type === "error") this.system(msg.message);
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
    this.list.dropPlaceholder();
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
      this.list.note(row);
    }
    if (this.opts.resultEl) window.Okto.showResult(this.opts.resultEl, Object.assign({ run_id: this.runId }, msg));
    if (this.opts.onEnd) this.opts.onEnd(msg);
    if (this.ws) this.ws.close();
  };

  window.Okto = window.Okto || {};
  window.Okto.RunConsole = RunConsole;
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
