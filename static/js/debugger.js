/* The editor's debugger: gutter breakpoints (kept per user and script on the
   server, moving with edits above them), debug runs, and the Debug pane
   (call stack, variables expanded lazily, watches, device calls).

   It talks to the platform over the run's debugger WebSocket
   (ws/runs/<id>/debug/, ide/debugging.py), never to a worker. Keys as in
   VS Code: F5 start / continue, F6 pause, F10 step over, F11 step into,
   Shift-F11 step out, Ctrl-F10 run to cursor, Shift-F5 stop,
   Ctrl-Shift-F5 restart. */
(function () {
  "use strict";
  const editor = window.oktoEditor;
  const Okto = window.Okto;
  const cfg = Okto.pageData("editor-config");
  const actions = Okto.editorActions;
  if (!editor || !cfg.canRun || !document.getElementById("pane-debug")) return;
  const api = Okto.api;
  const session = editor.session;
  const Range = ace.require("ace/range").Range;
  const $ = (id) => document.getElementById(id);
  const PAGE = 100;

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  /* ---- breakpoints ---- */
  const bps = new Map();
  (cfg.breakpoints || []).forEach((b) => bps.set(b.line, b));
  let saveTimer = null;

  function bpList() {
    return Array.from(bps.values()).sort((a, b) => a.line - b.line);
  }

  function renderGutter() {
    session.clearBreakpoints();
    for (const b of bps.values()) {
      const special = b.condition || b.hit || b.log;
      session.setBreakpoint(b.line - 1, special ? "okto-bp okto-bp-cond" : "okto-bp");
    }
  }

  function renderBpList() {
    const box = $("dbg-bps");
    box.textContent = "";
    if (!bps.size) { box.appendChild(el("span", "muted", "None. Click the gutter left of a line.")); return; }
    for (const b of bpList()) {
      const row = el("div", "dbg-bp");
      row.dataset.line = b.line;
      row.appendChild(el("span", "", "line " + b.line));
      const fields = [["condition", "condition (Lua)"], ["hit", "hits"], ["log", "log message {expr}"]];
      for (const [key, hint] of fields) {
        const input = el("input");
        input.placeholder = hint;
        input.setAttribute("aria-label", hint + " of line " + b.line);
        input.className = "dbg-bp-" + key;
        input.value = b[key] || "";
        input.addEventListener("change", () => {
          const value = input.value.trim();
          if (key === "hit") b.hit = parseInt(value, 10) > 0 ? parseInt(value, 10) : 0;
          else b[key] = value;
          changed();
        });
        row.appendChild(input);
      }
      const remove = el("button", "btn small", "×");
      remove.type = "button";
      remove.title = "remove";
      remove.addEventListener("click", () => { bps.delete(b.line); changed(); });
      row.appendChild(remove);
      box.appendChild(row);
    }
  }

  function changed() {
    renderGutter();
    renderBpList();
    clearTimeout(saveTimer);
    saveTimer = setTimeout(persist, 300);
    if (dbg && dbg.ws && dbg.ws.readyState === 1) configure();
  }

  async function persist() {
    try {
      await api("PUT", "/api/scripts/" + cfg.scriptId + "/breakpoints", { breakpoints: bpList() });
    } catch (e) {
      setState("Breakpoints not saved: " + e.message);
    }
  }

  editor.on("gutterclick", (e) => {
    const line = e.getDocumentPosition().row + 1;
    if (bps.has(line)) bps.delete(line); else bps.set(line, { line: line });
    changed();
    e.stop();
  });

  // Breakpoints move with lines added or removed above them, as editors do.
  session.on("change", (delta) => {
    const n = delta.lines.length - 1;
    if (!n || !bps.size) return;
    const startLine = delta.start.row + 1;
    const before = session.getLine(delta.start.row).slice(0, delta.start.column);
    const moved = new Map();
    for (const b of bps.values()) {
      let line = b.line;
      if (delta.action === "insert") {
        if (line > startLine || (line === startLine && before.trim() === "")) line += n;
      } else if (line > startLine + n) {
        line -= n;
      } else if (line > startLine) {
        line = startLine;
      }
      if (!moved.has(line)) moved.set(line, Object.assign({}, b, { line: line }));
    }
    bps.clear();
    moved.forEach((b, line) => bps.set(line, b));
    changed();
  });

  /* ---- debug runs ---- */
  let dbg = null; // { runId, ws, console, next, waiting, paused, frame, marker }
  const watches = JSON.parse(localStorage.getItem("okto.watches." + cfg.scriptId) || "[]");

  function setState(text, cls, message) {
    const box = $("dbg-state");
    box.className = "dbg-state" + (cls ? " " + cls : "");
    box.textContent = text;
    if (message) box.appendChild(el("span", "dbg-message", message));
  }

  function buttons() {
    const live = !!dbg && !dbg.ended;
    const paused = live && !!dbg.paused;
    $("dbg-pause").disabled = !live || paused;
    for (const id of ["dbg-over", "dbg-in", "dbg-out", "dbg-cursor"]) $(id).disabled = !paused;
    $("dbg-stop").disabled = !live;
    $("dbg-restart").disabled = !live;
  }

  function showTab() {
    document.querySelectorAll(".side-tabs button").forEach((x) => x.classList.toggle("active", x.dataset.pane === "pane-debug"));
    document.querySelectorAll(".side-pane").forEach((p) => p.classList.toggle("active", p.id === "pane-debug"));
  }

  async function start() {
    if (cfg.canEdit && !(await actions.save())) return;
    if (actions.dirty()) { setState("Save the script first."); return; }
    finish();
    const runId = Okto.uuid4();
    const out = $("console");
    out.textContent = "";
    dbg = {
      runId: runId, next: 1, waiting: new Map(), paused: null, frame: 1, ended: false,
      pauses: new Map(),
      console: new Okto.RunConsole(runId, {
        output: out, statusEl: $("run-status"), resultEl: $("result"),
        cancelBtn: $("cancel-btn"), pending: true, onJump: (line) => actions.jump(line, 0),
        onEnd: () => {},
      }),
    };
    showTab();
    setState("Starting…");
    buttons();
    try {
      await api("POST", "/api/runs", {
        script_id: cfg.scriptId, version: actions.version(), args: actions.collectArgs(),
        run_id: runId, debug: true,
      });
    } catch (e) {
      setState("Could not start the debug run: " + e.message);
      dbg.console.close();
      dbg = null;
      buttons();
      return;
    }
    connect(dbg);
  }

  function connect(d) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    d.ws = new WebSocket(scheme + location.host + "/ws/runs/" + d.runId + "/debug/");
    d.ws.onopen = () => { setState("Waiting for a worker…"); configureWhenTaken(d, Date.now()); };
    d.ws.onmessage = (ev) => {
      const message = JSON.parse(ev.data);
      if (message.type === "reply") {
        const waiter = d.waiting.get(message.id);
        if (waiter) { d.waiting.delete(message.id); waiter(message); }
        else if (!message.ok) setState(message.error || "debugger error");
      } else if (message.type === "debug" && d === dbg) {
        onEvent(message);
      }
    };
    d.ws.onclose = (ev) => {
      if (d !== dbg || d.ended) return;
      if (ev.code === 4403) setState("You may not debug this run.");
      else setState("The debugger connection closed.");
    };
  }

  function request(op, fields) {
    const d = dbg;
    if (!d || !d.ws || d.ws.readyState !== 1) return Promise.resolve({ ok: false, error: "not debugging" });
    const id = d.next++;
    return new Promise((resolve) => {
      d.waiting.set(id, resolve);
      d.ws.send(JSON.stringify(Object.assign({ id: id, op: op }, fields || {})));
    });
  }

  // The first configure lets the run start; a run still queued (no worker
  // holds it yet) is asked again until one does.
  async function configureWhenTaken(d, since) {
    const reply = await configure();
    if (d !== dbg || d.ended) return;
    if (reply.ok) { if (!d.paused) setState("Running…"); return; }
    if (/not running/.test(reply.error || "") && Date.now() - since < 600000) {
      setTimeout(() => configureWhenTaken(d, since), 1000);
    } else {
      setState(reply.error || "debugger error");
    }
  }

  function configure() {
    return request("configure", {
      breakpoints: bpList(), break_on_error: $("dbg-break-on-error").checked,
      pause_all: $("dbg-pause-all").checked,
    });
  }

  function onEvent(m) {
    if (m.event === "paused") {
      dbg.pauses.set(m.activation, m);
      clearPause("");
      showPause(m);
    } else if (m.event === "resumed") {
      dbg.pauses.delete(m.activation);
      if (dbg.paused && dbg.paused.activation !== m.activation) { renderActivations(); return; }
      clearPause("Running…");
      const other = Array.from(dbg.pauses.values()).pop();
      if (other) showPause(other);
    } else if (m.event === "ended") {
      dbg.pauses.clear();
      dbg.ended = true;
      clearPause("Ended: " + m.status + ".");
      if (dbg.ws) dbg.ws.close();
      buttons();
    }
  }

  function clearPause(text) {
    if (dbg) dbg.paused = null;
    $("dbg-activations").textContent = "";
    if (dbg && dbg.marker !== undefined) {
      session.removeMarker(dbg.marker);
      session.removeGutterDecoration(dbg.markRow, "okto-debug-gutter");
      dbg.marker = undefined;
    }
    setState(text);
    $("dbg-stack").textContent = "";
    $("dbg-vars").textContent = "";
    renderWatches(false);
    buttons();
  }

  // With listener callbacks, several activations may be paused at once.
  function renderActivations() {
    const box = $("dbg-activations");
    box.textContent = "";
    if (dbg.pauses.size < 2) return;
    box.appendChild(el("span", "muted", "Paused: "));
    for (const p of dbg.pauses.values()) {
      const link = el("button", "btn small" + (dbg.paused === p ? " active" : ""), activationName(p));
      link.type = "button";
      link.addEventListener("click", () => { clearPause(""); showPause(p); });
      box.appendChild(link);
    }
  }

  function activationName(m) {
    return m.kind === "listener" ? "listener callback #" + m.activation : "main chunk";
  }

  function showPause(m) {
    dbg.paused = m;
    const reasons = { breakpoint: "breakpoint", step: "step", pause: "paused", exception: "error" };
    const where = m.kind === "listener" ? ", in " + activationName(m) : "";
    setState("Paused at line " + m.line + " (" + (reasons[m.reason] || m.reason) + where + ")",
             "paused", m.message || "");
    renderActivations();
    if (m.line) {
      const row = m.line - 1;
      dbg.marker = session.addMarker(new Range(row, 0, row, 1), "okto-debug-line", "fullLine");
      dbg.markRow = row;
      session.addGutterDecoration(row, "okto-debug-gutter");
      editor.scrollToLine(row, true, true, () => {});
    }
    const stack = $("dbg-stack");
    stack.textContent = "";
    m.frames.forEach((f, i) => {
      const item = el("li", i === 0 ? "selected" : "", f.name + " — line " + f.line);
      item.addEventListener("click", () => {
        stack.querySelectorAll("li").forEach((x) => x.classList.toggle("selected", x === item));
        selectFrame(i + 1);
      });
      stack.appendChild(item);
    });
    renderCalls(m.calls || []);
    buttons();
    selectFrame(1);
  }

  async function selectFrame(frame) {
    dbg.frame = frame;
    const box = $("dbg-vars");
    box.textContent = "";
    const reply = await request("scopes", { frame: frame, activation: dbg.paused.activation });
    if (!reply.ok) { box.appendChild(el("li", "dbg-error", reply.error)); return; }
    reply.result.forEach((scope, i) => {
      box.appendChild(treeNode({ name: scope.name + " (" + scope.count + ")", ref: scope.count ? scope.ref : 0 }, i === 0, true));
    });
    renderWatches(true);
  }

  // One variable; a ref above 0 expands (a page at a time) when clicked.
  function treeNode(v, open, heading) {
    const item = el("li");
    const toggle = el("span", "dbg-toggle", v.ref > 0 ? "▸" : "");
    item.appendChild(toggle);
    item.appendChild(el("span", "dbg-name", v.name));
    if (!heading) item.appendChild(document.createTextNode(" = " + v.value));
    if (v.ref > 0) {
      const children = el("ul");
      let loaded = false;
      const expand = async () => {
        if (children.parentNode) { children.remove(); toggle.textContent = "▸"; return; }
        toggle.textContent = "▾";
        item.appendChild(children);
        if (!loaded) { loaded = true; await loadPage(children, v.ref, 0); }
      };
      toggle.addEventListener("click", expand);
      item.querySelector(".dbg-name").addEventListener("click", expand);
      if (open) expand();
    }
    return item;
  }

  async function loadPage(list, ref, start) {
    const reply = await request("variables", {
      ref: ref, start: start, count: PAGE, activation: dbg.paused && dbg.paused.activation,
    });
    if (!reply.ok) { list.appendChild(el("li", "dbg-error", reply.error)); return; }
    for (const child of reply.result.items) list.appendChild(treeNode(child, false, false));
    if (reply.result.more) {
      const more = el("li", "dbg-more", "more…");
      more.addEventListener("click", () => { more.remove(); loadPage(list, ref, start + PAGE); });
      list.appendChild(more);
    }
  }

  async function renderWatches(evaluate) {
    const box = $("dbg-watches");
    box.textContent = "";
    for (const expression of watches) {
      let item;
      if (evaluate && dbg && dbg.paused) {
        const reply = await request("evaluate", {
          expression: expression, frame: dbg.frame, activation: dbg.paused.activation,
        });
        item = reply.ok ? treeNode(Object.assign({}, reply.result, { name: expression }), false, false)
          : el("li", "", "");
        if (!reply.ok) {
          item.appendChild(el("span", "dbg-name", expression));
          item.appendChild(el("span", "dbg-error", " — " + reply.error));
        }
      } else {
        item = el("li");
        item.appendChild(el("span", "dbg-name", expression));
      }
      const remove = el("span", "dbg-remove", "×");
      remove.title = "remove watch";
      remove.addEventListener("click", () => {
        watches.splice(watches.indexOf(expression), 1);
        saveWatches();
        renderWatches(true);
      });
      item.appendChild(remove);
      box.appendChild(item);
    }
  }

  function saveWatches() {
    localStorage.setItem("okto.watches." + cfg.scriptId, JSON.stringify(watches));
  }

  $("dbg-watch-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const input = $("dbg-watch-input");
    const expression = input.value.trim();
    if (!expression) return;
    watches.push(expression);
    saveWatches();
    input.value = "";
    renderWatches(true);
  });

  function renderCalls(calls) {
    const box = $("dbg-calls");
    box.textContent = "";
    if (!calls.length) { box.appendChild(el("span", "muted", "None yet.")); return; }
    for (const call of calls.slice().reverse()) {
      const item = el("details", "dbg-call");
      item.appendChild(el("summary", "", call.name + " " + (call.target || "") + " — " +
        (call.ok ? "ok" : "failed") + ", " + Math.round(call.latency_s * 1000) + " ms"));
      item.appendChild(el("div", "muted", "request"));
      item.appendChild(el("pre", "dbg-request", call.request || ""));
      item.appendChild(el("div", "muted", "answer"));
      item.appendChild(el("pre", "dbg-answer", call.answer || ""));
      box.appendChild(item);
    }
  }

  function finish() {
    if (!dbg) return;
    if (dbg.ws) dbg.ws.close();
    if (dbg.console) dbg.console.close();
    clearPause("Not debugging.");
    dbg = null;
    buttons();
  }

  /* ---- commands ---- */
  function resume(command, line) {
    if (!dbg || !dbg.paused) return;
    request("resume", { command: command, line: line, activation: dbg.paused.activation })
      .then((r) => { if (!r.ok) setState(r.error); });
  }
  function continueOrStart() {
    if (dbg && !dbg.ended && dbg.paused) resume("continue");
    else if (!dbg || dbg.ended) start();
  }
  function pause() { if (dbg && !dbg.ended && !dbg.paused) request("pause"); }
  function stop() { if (dbg && !dbg.ended) request("stop"); }
  function restart() {
    if (dbg && !dbg.ended) request("stop");
    start();
  }
  function toCursor() { resume("cursor", editor.getCursorPosition().row + 1); }

  const commands = {
    "dbg-continue": continueOrStart, "dbg-pause": pause, "dbg-over": () => resume("over"),
    "dbg-in": () => resume("in"), "dbg-out": () => resume("out"), "dbg-cursor": toCursor,
    "dbg-restart": restart, "dbg-stop": stop,
  };
  Object.entries(commands).forEach(([id, fn]) => $(id).addEventListener("click", fn));
  $("debug-btn").addEventListener("click", continueOrStart);
  $("dbg-break-on-error").addEventListener("change", () => { if (dbg && !dbg.ended) configure(); });
  $("dbg-pause-all").addEventListener("change", () => { if (dbg && !dbg.ended) configure(); });

  const keys = [
    ["F5", continueOrStart], ["F6", pause], ["F10", () => resume("over")],
    ["F11", () => resume("in")], ["Shift-F11", () => resume("out")], ["Ctrl-F10", toCursor],
    ["Shift-F5", stop], ["Ctrl-Shift-F5", restart],
  ];
  for (const [key, fn] of keys) {
    editor.commands.addCommand({ name: "debug " + key, bindKey: { win: key, mac: key }, exec: fn });
  }
  document.addEventListener("keydown", (e) => {
    if (editor.isFocused() || !/^F(5|6|10|11)$/.test(e.key)) return;
    const name = (e.ctrlKey ? "Ctrl-" : "") + (e.shiftKey ? "Shift-" : "") + e.key;
    const found = keys.find(([key]) => key === name);
    if (found) { e.preventDefault(); found[1](); }
  });

  renderGutter();
  renderBpList();
  renderWatches(false);
  buttons();
})();
