/* The script editor: Ace with Lua highlighting, live checking, completion and
   signature help from the API registry, save and run. */
(function () {
  "use strict";
  const cfg = window.Okto.pageData("editor-config");
  const api = window.Okto.api;
  ace.config.set("basePath", cfg.aceBase);
  const Range = ace.require("ace/range").Range;
  const langTools = ace.require("ace/ext/language_tools");
  const data = JSON.parse(document.getElementById("completion-data").textContent);

  const editor = ace.edit("editor");
  const aceTheme = () => editor.setTheme(window.Okto.isDark && window.Okto.isDark() ? "ace/theme/one_dark" : "ace/theme/chrome");
  aceTheme();
  document.addEventListener("okto-theme", aceTheme);
  // No Ace worker (it would start from a blob: URL the page's policy forbids):
  // the platform's own check (/api/check) marks problems.
  editor.session.setUseWorker(false);
  editor.session.setMode("ace/mode/lua");
  editor.session.setTabSize(2);
  editor.session.setUseSoftTabs(true);
  editor.setShowPrintMargin(false);
  editor.setReadOnly(!cfg.canEdit);
  editor.setOptions({ enableBasicAutocompletion: true, enableLiveAutocompletion: true, enableSnippets: true });
  window.oktoEditor = editor;

  // A script not saved yet opens with the template as unsaved text: the first Save makes v1.
  let savedText = cfg.version || !cfg.canEdit ? editor.getValue() : null;
  let version = cfg.version;
  const stateEl = document.getElementById("save-state");

  let argRows = null;  // the arguments panel (below): its declarations are saved too
  function setState() {
    const dirty = editor.getValue() !== savedText || !!(argRows && argRows.dirty());
    stateEl.textContent = dirty ? "● unsaved changes" : (version ? "saved" : "");
    stateEl.classList.toggle("dirty", dirty);
    return dirty;
  }

  /* ---- completion with docs ---- */
  function esc(s) { return String(s).replace(/[&<>"]/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c])); }
  function apiDoc(b) {
    let html = "<b>" + esc(b.signature) + "</b> → <code>" + esc(b.returns) + "</code><br>" + esc(b.doc);
    if (b.params.length) {
      html += "<br><br>" + b.params.map(p => "<code>" + esc(p.name) + "</code> <i>" + esc(p.type) + (p.optional ? ", optional" : "") + "</i>" + (p.doc ? " — " + esc(p.doc) : "")).join("<br>");
    }
    if (b.waits) html += "<br><br><i>Waits for the device; honours cancel and time limits.</i>";
    return html;
  }
  const apiByName = {};
  data.api.forEach(b => { apiByName[b.name] = b; });
  const luaByName = {};
  data.lua.forEach(l => { luaByName[l.name] = l; });
  const completer = {
    identifierRegexps: [/[a-zA-Z_0-9.\$\-\u00A2-\uFFFF]/],
    getCompletions(ed, session, pos, prefix, callback) {
      const items = [];
      data.api.forEach(b => items.push({
        caption: b.name, value: b.name, meta: b.category, score: 1000,
        snippet: b.name + "(" + b.params.filter(p => !p.optional).map((p, i) => "${" + (i + 1) + ":" + p.name + "}").join(", ") + ")",
        docHTML: apiDoc(b),
      }));
      data.lua.forEach(l => items.push({ caption: l.name, value: l.name, meta: "lua", score: 500, docHTML: "<b>" + esc(l.signature) + "</b><br>" + esc(l.doc) }));
      callback(null, items);
    },
  };
  /* ---- parameter paths inside strings (send_cwmp_message payloads, USP paths) ---- */
  const ROOTS = ["Device.", "InternetGatewayDevice."];
  const pathCache = {};
  function pathToken(session, pos) {
    const token = session.getTokenAt(pos.row, pos.column);
    if (!token || !/string/.test(token.type)) return null;
    const m = session.getLine(pos.row).slice(0, pos.column).match(/[A-Za-z_][\w.{}-]*$/);
    if (!m) return null;
    const t = m[0];
    return ROOTS.some(r => t.startsWith(r) || r.startsWith(t)) ? t : null;
  }
  /* The device the call is about: its first argument, when written as a string. */
  function serialNearby(pos) {
    const text = editor.session.getLines(Math.max(0, pos.row - 15), pos.row).join("\n");
    const calls = [...text.matchAll(/send_(?:cwmp_|cwmp_async_|usp_)message\s*\(\s*["']([^"'\n]+)["']/g)];
    return calls.length ? calls[calls.length - 1][1] : "";
  }
  async function pathChildren(prefix, serial) {
    const parent = prefix.slice(0, prefix.lastIndexOf(".") + 1);
    const key = parent + "|" + serial;
    if (!pathCache[key]) {
      pathCache[key] = api("GET", "/api/datamodel?prefix=" + encodeURIComponent(parent) + "&serial=" + encodeURIComponent(serial))
        .catch(() => { delete pathCache[key]; return { children: [] }; });
    }
    return (await pathCache[key]).children;
  }
  function pathDoc(n) {
    return "<b>" + esc(n.path) + "</b><br><code>" + esc(n.type) + "</code> · " + (n.writable ? "writable" : "read-only") +
      (n.reported ? " · reported by devices" : "") + (n.doc ? "<br>" + esc(n.doc) : "");
  }
  /* Answers that come from the server are drawn now, not at the popup's next
     animation frame: a frame (16 ms, more on a busy machine) sooner on screen. */
  function paintList() {
    const c = editor.completer;
    if (c && c.popup && c.popup.isOpen) c.popup.renderer.updateFull(true);
  }
  /* The path replaces what was typed of it; after an object, its children are offered. */
  function insertPath(e, data) {
    const cur = e.getCursorPosition();
    const typed = e.session.getLine(cur.row).slice(0, cur.column).match(/[A-Za-z_][\w.{}-]*$/);
    const start = typed ? cur.column - typed[0].length : cur.column;
    e.session.replace(new Range(cur.row, start, cur.row, cur.column), data.value);
    if (data.value.endsWith(".")) setTimeout(() => e.execCommand("startAutocomplete"), 0);
  }
  const pathCompleter = {
    identifierRegexps: [/[a-zA-Z_0-9.\-]/],
    getCompletions(ed, session, pos, prefix, callback) {
      const token = pathToken(session, pos);
      const usp = uspAt(pos);
      // An Operate's command and a Set's param names: the USP completer's.
      if (token === null || (usp && usp.inString && USP_OWN.includes(usp.key))) { callback(null, []); return; }
      const plain = n => n.type !== "command" && !n.path.includes("().");
      pathChildren(token, serialNearby(pos)).then(nodes => {
        callback(null, nodes.filter(plain).map(n => ({
          caption: n.path, value: n.path, score: n.reported ? 3000 : 2000,
          meta: n.type + (n.writable ? " · writable" : " · read-only"), docHTML: pathDoc(n),
          completer: { insertMatch: insertPath },
        })));
        paintList();
      });
    },
  };
  /* ---- inside a send_usp_message payload (uspcompletion.js, ide/uspschema.py) ---- */
  const USP = window.Okto.usp;
  USP.useSchema(data.usp);
  const USP_OWN = ["command", "param"];  // value strings completed here, not as plain paths
  function uspAt(pos) {
    const lines = editor.session.getLines(Math.max(0, pos.row - 60), pos.row);
    lines[lines.length - 1] = lines[lines.length - 1].slice(0, pos.column);
    const payload = USP.payloadBefore(lines.join("\n"));
    return payload === null ? null : USP.context(payload);
  }
  const EMPTY = { message: {}, string: "", bool: true, number: 0, map: {} };
  function luaValue(v) {
    if (Array.isArray(v)) return "{" + v.map(luaValue).join(", ") + "}";
    if (v !== null && typeof v === "object") return "{" + Object.entries(v).map(([k, x]) => k + " = " + luaValue(x)).join(", ") + "}";
    return JSON.stringify(v);
  }
  /* A field as the payload's language writes it, the cursor after the first "Device.". */
  function uspField(ctx, name, f) {
    let value = data.usp.shapes[name] !== undefined && ctx.keys.join(".") === "body.request" ? data.usp.shapes[name]
      : f.repeated ? [] : f.type === "enum" ? f.values[0] : EMPTY[f.type];
    const text = ctx.mode === "lua" ? name + " = " + luaValue(value) : '"' + name + '": ' + JSON.stringify(value);
    return text.replace(/\$/g, "\\$").replace("Device.", "Device.$0");
  }
  /* The strings given beside the cursor's tables, innermost first. */
  function uspGiven(ctx, key) {
    for (let i = ctx.levels.length - 1; i >= 0; i--) if (ctx.levels[i].strings[key]) return ctx.levels[i].strings[key];
    return "";
  }
  /* Replaces what was typed of it (matched at insert time: the list may have
     been filtered by typing since it opened). */
  const TYPED = { key: /[A-Za-z_]\w*$/, jsonKey: /"[A-Za-z_]*$/, path: /[A-Za-z_][\w.{}()\-]*$/, name: /\w*$/ };
  function uspInsert(typed) {
    return (e, item) => {
      const cur = e.getCursorPosition();
      const m = e.session.getLine(cur.row).slice(0, cur.column).match(typed);
      const replace = m ? m[0].length : 0;
      e.session.remove(new Range(cur.row, cur.column - replace, cur.row, cur.column));
      if (item.snippet) e.insertSnippet(item.snippet); else e.insert(item.value);
      if (item.reopen) setTimeout(() => e.execCommand("startAutocomplete"), 0);
    };
  }
  const uspCompleter = {
    identifierRegexps: [/[a-zA-Z_0-9.\-]/],
    getCompletions(ed, session, pos, prefix, callback) {
      const ctx = uspAt(pos);
      if (!ctx || !ctx.position) { callback(null, []); return; }
      const n = USP.node(data.usp.msg, ctx.keys);
      const keyTyped = ctx.mode === "json" && ctx.inString ? TYPED.jsonKey : TYPED.key;
      if (ctx.position === "key" && n && n.type === "message" && !n.repeated) {
        callback(null, Object.entries(n.fields).map(([name, f]) => ({
          caption: name, snippet: uspField(ctx, name, f), score: 5000, meta: "USP " + (f.repeated ? "list" : f.type),
          reopen: data.usp.shapes[name] !== undefined, completer: { insertMatch: uspInsert(keyTyped) },
          docHTML: "<b>" + esc(ctx.keys.concat([name]).join(".")) + "</b><br>" + (f.values ? esc(f.values.join(", ")) : esc(f.type)),
        })));
        return;
      }
      if (ctx.position === "key" && n && n.type === "map" && ctx.keys[ctx.keys.length - 1] === "input_args") {
        const command = uspGiven(ctx, "command");
        if (!command.endsWith("()")) { callback(null, []); return; }
        pathChildren(command + ".", "").then(nodes => callback(null, nodes.map(x => ({
          caption: x.name, score: 5000, meta: "input · " + x.type, docHTML: pathDoc(x),
          value: ctx.mode === "lua" ? x.name + " = " : '"' + x.name + '": ',
          completer: { insertMatch: uspInsert(keyTyped) },
        }))));
        return;
      }
      if (!ctx.inString || !USP_OWN.includes(ctx.key)) { callback(null, []); return; }
      if (ctx.key === "command") {  // objects to go down, and the commands of each
        pathChildren(ctx.partial || "Device.", serialNearby(pos)).then(nodes => callback(null, nodes
          .filter(x => x.type === "command" || x.path.endsWith("."))
          .map(x => ({ caption: x.path, value: x.path, score: x.type === "command" ? 5000 : 4000, docHTML: pathDoc(x),
                       meta: x.type === "command" ? "command · Operate" : x.type, reopen: x.path.endsWith("."),
                       completer: { insertMatch: uspInsert(TYPED.path) } }))));
        return;
      }
      const object = uspGiven(ctx, "obj_path");  // "param": a parameter of the object being set
      if (!object.endsWith(".")) { callback(null, []); return; }
      pathChildren(object, serialNearby(pos)).then(nodes => callback(null, nodes
        .filter(x => !x.path.endsWith(".") && x.type !== "command")
        .map(x => ({ caption: x.name, value: x.name, score: 5000, docHTML: pathDoc(x),
                     meta: x.type + (x.writable ? " · writable" : " · read-only"),
                     completer: { insertMatch: uspInsert(TYPED.name) } }))));
    },
  };
  window.oktoUspContext = (row, column) => uspAt({ row: row, column: column });
  // After a "." in a path, or after a variable holding an API table, the list
  // is the next level's: gather it afresh (the open list would only be filtered).
  editor.commands.on("afterExec", (e) => {
    if (e.command.name !== "insertstring" || e.args !== ".") return;
    const pos = editor.getCursorPosition();
    const before = editor.session.getLine(pos.row).slice(0, pos.column);
    const table = before.match(/([A-Za-z_]\w*)\.$/);
    if (!pathToken(editor.session, pos) && !(table && tableSource(table[1], pos.row))) return;
    setTimeout(() => {
      if (editor.completer) editor.completer.detach();
      editor.execCommand("startAutocomplete");
    }, 0);
  });
  window.oktoPathToken = (row, column) => pathToken(editor.session, { row: row, column: column });
  /* ---- fields of the tables the API returns: d. after local d = get_device(...) ---- */
  const fieldCompleter = {
    getCompletions(ed, session, pos, prefix, callback) {
      const before = session.getLine(pos.row).slice(0, pos.column);
      const m = before.match(/([A-Za-z_]\w*)\.(\w*)$/);
      const b = m && tableSource(m[1], pos.row);
      if (!b) { callback(null, []); return; }
      callback(null, b.fields.map(f => ({
        caption: m[1] + "." + f.name, value: m[1] + "." + f.name, meta: f.type, score: 4000,
        docHTML: "<b>" + esc(m[1] + "." + f.name) + "</b> <code>" + esc(f.type) + "</code><br>" + esc(f.doc) +
          "<br><i>from " + esc(b.name) + "</i>",
      })));
    },
  };
  /* The binding whose returned table a variable holds, from the code above:
     local d = get_device(...), or for _, d in ipairs(get_all_devices()). */
  function tableSource(name, row) {
    const text = editor.session.getLines(Math.max(0, row - 200), row).join("\n");
    const assign = new RegExp("(?:local\\s+)?\\b" + name + "\\s*=\\s*([A-Za-z_]\\w*)\\s*\\(", "g");
    const loop = new RegExp("for\\s+[A-Za-z_]\\w*\\s*,\\s*" + name + "\\s+in\\s+i?pairs\\s*\\(\\s*([A-Za-z_]\\w*)\\s*\\(", "g");
    let found = null;
    for (const re of [assign, loop]) for (const m of text.matchAll(re)) {
      const b = apiByName[m[1]];
      if (b && b.fields && b.fields.length && (!found || m.index > found.at)) found = { at: m.index, b: b };
    }
    return found ? found.b : null;
  }

  langTools.setCompleters([uspCompleter, fieldCompleter, pathCompleter, completer, langTools.keyWordCompleter, langTools.textCompleter]);

  /* ---- signature help ---- */
  const sig = document.createElement("div");
  sig.className = "ace_tooltip okto-doc";
  sig.id = "signature-help";
  sig.style.cssText = "position:fixed;display:none;z-index:1000;pointer-events:none";
  document.body.appendChild(sig);

  function callAtCursor() {
    const pos = editor.getCursorPosition();
    const before = editor.session.getLines(Math.max(0, pos.row - 20), pos.row).join("\n");
    const text = before.slice(0, before.length - (editor.session.getLine(pos.row).length - pos.column));
    let depth = 0, commas = 0;
    for (let i = text.length - 1; i >= 0; i--) {
      const c = text[i];
      if (c === ")" || c === "}" || c === "]") depth++;
      else if (c === "{" || c === "[") { if (depth === 0) return null; depth--; }
      else if (c === "(") {
        if (depth === 0) {
          const m = text.slice(0, i).match(/([A-Za-z_][A-Za-z0-9_.]*)\s*$/);
          return m ? { name: m[1], arg: commas } : null;
        }
        depth--;
      } else if (c === "," && depth === 0) commas++;
      else if (c === "\n" && depth === 0 && i < text.length - 400) return null;
    }
    return null;
  }

  function showSignature() {
    const call = callAtCursor();
    const b = call && apiByName[call.name];
    const l = call && luaByName[call.name];
    if (!b && !l) { sig.style.display = "none"; return; }
    if (b) {
      const parts = b.params.map((p, i) => {
        const t = esc(p.name + (p.optional ? "?" : "") + ": " + p.type);
        return i === call.arg ? "<b style='text-decoration:underline'>" + t + "</b>" : t;
      });
      const p = b.params[call.arg];
      sig.innerHTML = "<div class='sig-code'>" + esc(b.name) + "(" + parts.join(", ") + ")</div>" +
        "<div class='sig-ret'>→ " + esc(b.returns) + "</div>" +
        "<div class='sig-doc'>" + esc(p && p.doc ? p.name + ": " + p.doc : b.doc) + "</div>";
    } else {
      sig.innerHTML = "<div class='sig-code'>" + esc(l.signature) + "</div><div class='sig-doc'>" + esc(l.doc) + "</div>";
    }
    // Below the line being typed, never over it.
    const c = editor.renderer.textToScreenCoordinates(editor.getCursorPosition());
    sig.style.left = Math.max(4, Math.min(c.pageX - 20, window.innerWidth - 540)) + "px";
    sig.style.top = (c.pageY + editor.renderer.lineHeight + 4) + "px";
    sig.style.display = "block";
  }
  editor.selection.on("changeCursor", () => setTimeout(showSignature, 0));
  editor.on("blur", () => { sig.style.display = "none"; });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") sig.style.display = "none"; });

  /* ---- hover: the docs of an API function, or of a parameter path in a string ---- */
  const hover = document.createElement("div");
  hover.className = "ace_tooltip okto-doc";
  hover.id = "hover-doc";
  hover.style.cssText = "position:fixed;display:none;z-index:1000;pointer-events:none;max-width:520px;white-space:normal";
  document.body.appendChild(hover);
  let hoverTimer = null, hoverKey = "";
  function wordAt(pos) {
    const line = editor.session.getLine(pos.row);
    const re = /[A-Za-z_][\w.{}]*/g;
    let m;
    while ((m = re.exec(line))) if (m.index <= pos.column && pos.column <= m.index + m[0].length) return m[0];
    return "";
  }
  async function showHover(ev) {
    const pos = editor.renderer.screenToTextCoordinates(ev.clientX, ev.clientY);
    const word = wordAt(pos);
    const token = editor.session.getTokenAt(pos.row, pos.column + 1);
    let html = "";
    if (token && /string/.test(token.type) && ROOTS.some(r => word.startsWith(r))) {
      const key = "path:" + word;
      if (key === hoverKey) return;
      hoverKey = key;
      let res;
      try { res = await api("GET", "/api/datamodel?prefix=" + encodeURIComponent(word)); } catch (e) { return; }
      if (hoverKey !== key || !res.described) return;
      html = pathDoc(Object.assign({}, res.described, { path: word }));
    } else if (apiByName[word]) {
      if (hoverKey === "api:" + word) return;
      hoverKey = "api:" + word;
      html = apiDoc(apiByName[word]);
    } else if (luaByName[word]) {
      hoverKey = "lua:" + word;
      html = "<b>" + esc(luaByName[word].signature) + "</b><br>" + esc(luaByName[word].doc);
    } else { hoverKey = ""; hover.style.display = "none"; return; }
    hover.innerHTML = html;
    hover.style.left = Math.max(4, Math.min(ev.clientX + 12, window.innerWidth - 540)) + "px";
    hover.style.top = (ev.clientY + 16) + "px";
    hover.style.display = "block";
  }
  editor.container.addEventListener("mousemove", (ev) => {
    clearTimeout(hoverTimer);
    hoverTimer = setTimeout(() => showHover(ev), 250);
  });
  editor.container.addEventListener("mouseleave", () => { clearTimeout(hoverTimer); hoverKey = ""; hover.style.display = "none"; });

  /* ---- checking as the user types ---- */
  let markers = [];
  let checkTimer = null;
  let checkSeq = 0;
  const list = document.getElementById("problem-list");

  async function check() {
    const seq = ++checkSeq;
    const source = editor.getValue();
    let res;
    try { res = await api("POST", "/api/check", { source: source }); }
    catch (e) { list.innerHTML = ""; list.appendChild(Object.assign(document.createElement("div"), { className: "item muted", textContent: "Check failed: " + e.message })); return; }
    if (seq !== checkSeq) return;  // a newer check is on its way
    showProblems(res.problems);
  }

  function showProblems(problems) {
    markers.forEach(id => editor.session.removeMarker(id));
    markers = [];
    editor.session.setAnnotations(problems.map(p => ({ row: p.line - 1, column: p.column || 0, text: p.message, type: p.severity })));
    // A check that lands after a run failed must not wipe the run's mark.
    if (runMark) drawRunError();
    list.innerHTML = "";
    if (!problems.length) { list.appendChild(Object.assign(document.createElement("div"), { className: "item muted", textContent: "No problems." })); }
    problems.forEach(p => {
      const row = p.line - 1;
      const lineLen = editor.session.getLine(row).length;
      let start = p.column || 0, end = p.end_column || 0;
      if (end <= start) { start = 0; end = Math.max(lineLen, 1); }
      markers.push(editor.session.addMarker(new Range(row, start, row, end), "ace_" + p.severity + "-marker", "text", true));
      const item = document.createElement("div");
      item.className = "item " + p.severity;
      item.innerHTML = "<span class='sev'>" + (p.severity === "error" ? "✖" : "▲") + "</span><span class='where'>" + p.line + ":" + ((p.column || 0) + 1) + "</span><span></span>";
      item.lastChild.textContent = p.message;
      item.addEventListener("click", () => jump(p.line, p.column || 0));
      list.appendChild(item);
    });
    document.getElementById("problems").dataset.count = problems.length;
  }

  /* The "Recent runs" tab, reloaded when a run ends. */
  async function refreshRecent() {
    let data;
    try { data = await api("GET", "/api/runs?script=" + encodeURIComponent(cfg.scriptName)); } catch (e) { return; }
    const body = document.querySelector("#pane-recent tbody");
    body.innerHTML = "";
    data.runs.slice(0, 8).forEach(r => {
      const tr = document.createElement("tr");
      const when = new Date(r.created);
      const p = (n) => String(n).padStart(2, "0");
      tr.innerHTML = "<td><a></a></td><td><span></span></td><td class='muted'></td>";
      tr.querySelector("a").href = "/runs/" + r.id + "/";
      tr.querySelector("a").textContent = p(when.getMonth() + 1) + "-" + p(when.getDate()) + " " + p(when.getHours()) + ":" + p(when.getMinutes()) + ":" + p(when.getSeconds());
      tr.querySelector("span").className = "badge " + r.status;
      tr.querySelector("span").textContent = r.status.replace("_", " ");
      tr.lastChild.textContent = r.version ? "v" + r.version : (r.trigger === "draft" ? "draft" : "—");
      body.appendChild(tr);
    });
  }

  /* A run's error is marked on its line while the text is the text that ran. */
  let runMark = null;
  function markRunError(error, ranText) {
    runMark = null;
    if (!error || !error.line || error.kind === "cancelled" || editor.getValue() !== ranText) return;
    runMark = { row: error.line - 1, text: ranText,
      message: "run failed: " + String(error.message).replace(/^[^:\n]*:\d+: /, "") };
    drawRunError();
  }
  function drawRunError() {
    if (editor.getValue() !== runMark.text) { runMark = null; return; }
    const row = runMark.row;
    editor.session.setAnnotations(editor.session.getAnnotations().concat([{ row: row, column: 0, text: runMark.message, type: "error" }]));
    markers.push(editor.session.addMarker(new Range(row, 0, row, Math.max(1, editor.session.getLine(row).length)), "ace_error-marker run-error", "text", true));
  }

  function jump(line, column) {
    editor.gotoLine(line, column || 0, true);
    editor.focus();
  }
  window.oktoJump = jump;

  editor.session.on("change", () => {
    setState();
    clearTimeout(checkTimer);
    checkTimer = setTimeout(check, 250);
  });
  check();
  setState();

  /* ---- save ---- */
  async function save() {
    if (!cfg.canEdit) return false;
    if (!setState() && version) return true;
    const msgEl = document.getElementById("save-message");
    stateEl.textContent = "saving…";
    try {
      const content = editor.getValue();
      const declared = argRows.declarations();
      const url = "/api/scripts/" + cfg.scriptId + "/versions";
      let v;
      try {
        v = await api("POST", url, { content: content, message: msgEl.value, base_version: version || null, arguments: declared });
      } catch (e) {
        if (!/ saved version \d+ after your version/.test(e.message)) throw e;
        if (!confirm(e.message + ".\n\nSave your text as a new version anyway? (Both stay in the history.)")) {
          stateEl.textContent = "not saved: " + e.message;
          stateEl.classList.add("dirty");
          return false;
        }
        v = await api("POST", url, { content: content, message: msgEl.value, arguments: declared });
      }
      savedText = content;
      argRows.markSaved(declared);
      version = v.number;
      msgEl.value = "";
      document.getElementById("version-label").textContent = "v" + v.number + " · saved just now by " + v.author;
      setState();
      return true;
    } catch (e) {
      stateEl.textContent = "save failed: " + e.message;
      stateEl.classList.add("dirty");
      return false;
    }
  }

  /* ---- arguments ---- */
  argRows = new window.Okto.ArgumentRows(document.getElementById("arg-rows"), document.getElementById("args-empty"), {
    declarations: cfg.arguments, last: cfg.lastArgs, presets: cfg.presets, scriptId: cfg.scriptId,
    presetBar: document.getElementById("arg-presets"), canEdit: cfg.canEdit, canRun: cfg.canRun,
    onChange: () => setState(),
  });
  const addArgBtn = document.getElementById("add-arg");
  if (addArgBtn) addArgBtn.addEventListener("click", () => argRows.add().nameIn.focus());
  function collectArgs() {
    const args = argRows.collect();
    // A twin chosen as the target: its serial is the script's device argument.
    if (twinTarget && twinTarget.value) args.serial = twinTarget.value;
    return args;
  }
  /* ---- target: the running device twins ---- */
  const twinTarget = document.getElementById("twin-target");
  if (twinTarget) api("GET", "/api/twins").then((data) => {
    for (const t of data.results) {
      if (t.state !== "running") continue;
      const option = document.createElement("option");
      option.value = t.serial;
      option.textContent = "twin " + t.serial + " of " + t.source;
      twinTarget.appendChild(option);
    }
  }).catch(() => {});

  /* ---- run ---- */
  let current = null;
  const runBtn = document.getElementById("run-btn");
  const cancelBtn = document.getElementById("cancel-btn");
  const statusEl = document.getElementById("run-status");
  const resultEl = document.getElementById("result");
  const runLink = document.getElementById("run-link");

  /* Unsaved edits run as a draft: the exact text is kept with the run and no
     version is made (only Save makes one). "plan": writes are planned, not made. */
  async function run(mode) {
    mode = mode === "plan" ? "plan" : "run";
    if (!cfg.canRun) return;
    const ranText = editor.getValue();
    const draft = cfg.canEdit && ranText !== savedText;
    let args;
    try { args = collectArgs(); } catch (e) { statusEl.className = "badge failed"; statusEl.textContent = e.message; return; }
    runBtn.disabled = true;
    statusEl.className = "badge plain";
    statusEl.textContent = "starting";
    resultEl.innerHTML = "";
    const out = document.getElementById("console");
    // The console connects while the run is submitted (with an id chosen here),
    // so it is listening when the first line comes.
    const runId = window.Okto.uuid4();
    if (current) current.close();
    current = new window.Okto.RunConsole(runId, {
      output: out, statusEl: statusEl, resultEl: resultEl, cancelBtn: cancelBtn, pending: true,
      placeholder: "Waiting for output…",
      onJump: (line) => jump(line, 0),
      onEnd: (msg) => { runBtn.disabled = false; markRunError(msg.error, ranText); refreshRecent(); },
      onRefused: () => { runBtn.disabled = false; },
    });
    try {
      const body = draft ? { script_id: cfg.scriptId, code: ranText, args: args, run_id: runId, mode: mode }
        : { script_id: cfg.scriptId, version: version, args: args, run_id: runId, mode: mode };
      const r = await api("POST", "/api/runs", body);
      runLink.href = "/runs/" + r.id + "/";
      runLink.style.display = "";
      if (!current.status) current.setStatus(r.status);
    } catch (e) {
      current.close();
      current.list.dropPlaceholder();
      current.list.note(Object.assign(document.createElement("div"), { className: "line failure", textContent: "Could not start the run: " + e.message }));
      runBtn.disabled = false;
    }
  }
  if (cancelBtn) cancelBtn.addEventListener("click", async () => {
    if (!current) return;
    cancelBtn.disabled = true;
    try { await api("POST", "/api/runs/" + current.runId + "/cancel"); } catch (e) { current.system("Cancel failed: " + e.message); }
  });
  if (runBtn) runBtn.addEventListener("click", () => run("run"));
  /* Plan mode: the run's page shows the plan as a diff, and applies it. */
  const planBtn = document.getElementById("plan-btn");
  if (planBtn) planBtn.addEventListener("click", () => run("plan"));
  const saveBtn = document.getElementById("save-btn");
  if (saveBtn) saveBtn.addEventListener("click", save);

  editor.commands.addCommand({ name: "save", bindKey: { win: "Ctrl-S", mac: "Command-S" }, exec: save });
  editor.commands.addCommand({ name: "run", bindKey: { win: "Ctrl-Enter", mac: "Command-Enter" }, exec: run });
  document.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "s") { e.preventDefault(); save(); }
    else if ((e.ctrlKey || e.metaKey) && e.key === "Enter") { e.preventDefault(); run(); }
  });
  window.addEventListener("beforeunload", (e) => { if (setState()) { e.preventDefault(); e.returnValue = ""; } });

  /* ---- the side panel's width: drag the splitter (kept for the next visit) ---- */
  const split = document.querySelector(".editor-split");
  const splitter = document.getElementById("splitter");
  const savedWidth = Number(localStorage.getItem("okto.sideWidth"));
  if (savedWidth) split.style.setProperty("--side-width", savedWidth + "px");
  if (splitter) splitter.addEventListener("pointerdown", (down) => {
    splitter.setPointerCapture(down.pointerId);
    splitter.classList.add("dragging");
    const box = split.getBoundingClientRect();
    const move = (ev) => {
      const width = Math.round(Math.max(280, Math.min(box.right - ev.clientX, box.width - 320)));
      split.style.setProperty("--side-width", width + "px");
      localStorage.setItem("okto.sideWidth", String(width));
    };
    const up = () => {
      splitter.classList.remove("dragging");
      splitter.removeEventListener("pointermove", move);
      editor.resize();
    };
    splitter.addEventListener("pointermove", move);
    splitter.addEventListener("pointerup", up, { once: true });
  });

  // For the debugger (debugger.js): it saves and starts runs like Run does.
  window.Okto.editorActions = {
    save: save, collectArgs: collectArgs, version: () => version, jump: jump, dirty: setState,
  };

  /* ---- the snippet gallery: a script for a common task, inserted at the cursor ---- */
  const snippetMenu = document.getElementById("snippet-menu");
  if (snippetMenu) (data.snippets || []).forEach(sn => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "snippet";
    b.innerHTML = "<b></b><span class='muted'></span>";
    b.firstChild.textContent = sn.title;
    b.lastChild.textContent = sn.doc;
    b.addEventListener("click", () => {
      editor.session.insert(editor.getCursorPosition(), sn.code);
      document.getElementById("snippets").open = false;
      editor.focus();
    });
    snippetMenu.appendChild(b);
  });

  /* ---- side tabs ---- */
  document.querySelectorAll(".side-tabs button").forEach(b => b.addEventListener("click", () => {
    document.querySelectorAll(".side-tabs button").forEach(x => x.classList.toggle("active", x === b));
    document.querySelectorAll(".side-pane").forEach(p => p.classList.toggle("active", p.id === b.dataset.pane));
  }));
})();
