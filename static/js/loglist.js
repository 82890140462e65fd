/* A run's output as a virtual list: only the rows in view are in the page, so
   100,000 lines stream in and scroll as fast as 100. Lines are kept by seq
   (1, 2, 3 ...); lines the page has not got yet (a stored run opens with its
   last lines only) are fetched a page at a time from the REST API when they
   scroll into view. The toolbar searches, filters by kind, wraps, switches
   timestamps, copies, downloads and clears. A device call's line opens in
   place to its request and answer as sent on the wire (GET
   /api/runs/<id>/calls/<seq>). Used by RunConsole (console.js). */
(function () {
  "use strict";

  const PAGE = 5000;        // lines per REST page (the API's most)
  const PARALLEL = 4;       // pages fetched at once when every line is needed
  const OVERSCAN = 30;      // rows drawn above and below the visible ones
  const KINDS = [["stdout", "print"], ["log", "log"], ["call", "device calls"]];
  const CALL_RE = /^(\S+)(?: (.+?))?: ([\d.]+) ms, (ok|failed)$/;

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

  /* box: the scrolling element; opts: {runId, tools: bool, placeholder} */
  function LogList(box, opts) {
    this.box = box;
    this.opts = opts || {};
    this.rows = [];           // index seq-1 -> line, or undefined while not fetched
    this.count = 0;           // highest seq known
    this.view = null;         // null: every line from `cleared`; else model indices shown
    this.cleared = 0;         // lines before this index were cleared from the view
    this.hidden = {};         // stream -> true when filtered out
    this.query = "";
    this.matches = [];        // view positions that match the query
    this.current = -1;        // index into matches
    this.wrap = false;
    this.relative = false;
    this.t0 = null;
    this.stick = true;
    this.pages = {};          // page number -> "loading" | "done"
    this.heights = [];        // wrap mode: measured height per view position
    this.tops = null;         // wrap mode: prefix sums of heights
    this.frame = 0;
    this.calls = {};          // seq -> {state: "loading" | "done" | "failed", data} of opened calls
    this.opened = 0;          // how many call lines are open (their rows are taller)
    this.build();
  }

  LogList.prototype.build = function () {
    const box = this.box;
    if (box.loglist) box.loglist.destroy();  // a new run in the same console
    box.loglist = this;
    box.innerHTML = "";
    box.classList.add("loglist");
    box.classList.remove("wrap");
    if (this.opts.tools !== false) { this.bar = this.toolbar(); box.parentNode.insertBefore(this.bar, box); }
    this.list = el("div", "vlist");
    this.foot = el("div", "foot");
    box.appendChild(this.list);
    box.appendChild(this.foot);
    this.rowH = this.measure();
    if (this.opts.placeholder) this.foot.appendChild(el("div", "placeholder", this.opts.placeholder));
    // Only the reader leaves the end (wheel, touch, scrollbar, keys); a scroll
    // that layout caused (a panel above or below changed size) keeps following.
    this.userAt = -Infinity;
    this.onUser = () => { this.userAt = performance.now(); };
    ["wheel", "touchstart", "pointerdown", "keydown"].forEach(t => box.addEventListener(t, this.onUser, { passive: true }));
    this.onScroll = () => {
      const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - this.rowH * 1.5;
      if (atEnd) this.stick = true;
      else if (performance.now() - this.userAt < 1000) this.stick = false;
      else this.follow();
      this.updateJump();
      this.schedule();
    };
    box.addEventListener("scroll", this.onScroll);
    this.resized = new ResizeObserver(() => {
      this.heights = []; this.tops = null; this.autoTop = undefined; this.schedule(true);
    });
    this.resized.observe(box);
  };

  LogList.prototype.destroy = function () {
    this.dead = true;  // its run's socket may still deliver: nothing is drawn any more
    this.box.removeEventListener("scroll", this.onScroll);
    ["wheel", "touchstart", "pointerdown", "keydown"].forEach(t => this.box.removeEventListener(t, this.onUser));
    this.resized.disconnect();
    if (this.frame) cancelAnimationFrame(this.frame);
    if (this.bar) this.bar.remove();
    this.box.loglist = null;
  };

  /* The height of one unwrapped row, from the stylesheet. */
  LogList.prototype.measure = function () {
    const probe = this.draw({ seq: 0, stream: "stdout", text: "Mg", time: 0 });
    probe.style.visibility = "hidden";
    this.list.appendChild(probe);
    const h = probe.getBoundingClientRect().height || 18;  // 0 while hidden
    probe.remove();
    return h;
  };

  LogList.prototype.toolbar = function () {
    const bar = el("div", "console-tools");
    const search = el("input", "search");
    search.type = "search";
    search.placeholder = "Search output";
    search.setAttribute("aria-label", "Search the output");
    this.searchCount = el("span", "muted count", "");
    search.addEventListener("input", () => this.setQuery(search.value));
    search.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); this.next(e.shiftKey ? -1 : 1); } });
    const prev = this.button("↑", "Previous match (Shift-Enter)", () => this.next(-1));
    const next = this.button("↓", "Next match (Enter)", () => this.next(1));
    bar.append(search, prev, next, this.searchCount);
    const kinds = el("span", "kinds");
    KINDS.forEach(([stream, label]) => {
      const l = el("label", "toggle");
      const box = el("input");
      box.type = "checkbox";
      box.checked = true;
      box.dataset.stream = stream;
      box.addEventListener("change", () => { this.hidden[stream] = !box.checked; this.refilter(); });
      l.append(box, document.createTextNode(" " + label));
      kinds.appendChild(l);
    });
    bar.appendChild(kinds);
    const wrap = this.button("Wrap", "Wrap long lines", () => {
      this.wrap = !this.wrap;
      wrap.classList.toggle("on", this.wrap);
      this.box.classList.toggle("wrap", this.wrap);
      this.heights = [];
      this.tops = null;
      this.schedule(true);
    });
    wrap.dataset.action = "wrap";
    const time = this.button("Clock", "Timestamps: clock time or since the run started", () => {
      this.relative = !this.relative;
      time.textContent = this.relative ? "+s" : "Clock";
      this.schedule(true);
    });
    time.dataset.action = "time";
    const copy = this.button("Copy", "Copy the lines shown", () => this.copy(copy));
    copy.dataset.action = "copy";
    this.download = el("a", "btn small", "Download");
    this.download.title = "All output as a text file";
    this.download.dataset.action = "download";
    if (this.opts.runId) this.download.href = "/api/runs/" + this.opts.runId + "/output/text";
    const clear = this.button("Clear", "Clear the console (the stored output stays)", () => this.clear());
    clear.dataset.action = "clear";
    bar.append(wrap, time, copy, this.download, clear);
    this.jump = this.button("↓ new lines", "Follow the output", () => { this.stick = true; this.scrollToEnd(); });
    this.jump.classList.add("jump");
    this.jump.style.display = "none";
    bar.appendChild(this.jump);
    return bar;
  };

  LogList.prototype.button = function (text, title, fn) {
    const b = el("button", "btn small", text);
    b.type = "button";
    b.title = title;
    b.addEventListener("click", fn);
    return b;
  };

  LogList.prototype.setRun = function (runId) {
    this.opts.runId = runId;
    if (this.download) this.download.href = "/api/runs/" + runId + "/output/text";
  };

  /* ---- the model ---- */

  LogList.prototype.add = function (lines) {
    let grew = false;
    for (const l of lines) {
      if (!this.rows[l.seq - 1]) this.rows[l.seq - 1] = l;
      if (l.seq > this.count) { this.count = l.seq; grew = true; }
      if (this.t0 === null || l.time < this.t0) this.t0 = l.time;
    }
    if (this.placeholderShown()) this.foot.querySelector(".placeholder").remove();
    if (this.view && grew) this.extendView();
    if (this.query && grew) this.extendMatches();
    this.schedule();
  };

  LogList.prototype.placeholderShown = function () { return !!this.foot.querySelector(".placeholder"); };
  LogList.prototype.dropPlaceholder = function () { if (this.placeholderShown()) this.foot.querySelector(".placeholder").remove(); };

  LogList.prototype.setStart = function (epoch) { if (epoch) this.t0 = epoch; };

  /* A message of the platform or the run's error, below the lines. */
  LogList.prototype.note = function (row) {
    if (this.dead) return;
    this.dropPlaceholder();
    this.foot.appendChild(row);
    this.follow();
  };

  LogList.prototype.size = function () { return this.view ? this.view.length : this.count - this.cleared; };
  LogList.prototype.indexAt = function (v) { return this.view ? this.view[v] : this.cleared + v; };

  LogList.prototype.shown = function (i) {
    if (i < this.cleared) return false;
    const l = this.rows[i];
    return !l || !this.hidden[l.stream];
  };

  LogList.prototype.filtering = function () { return Object.values(this.hidden).some(Boolean); };

  /* Rebuild the list of shown lines (a kind filter changed); needs every line. */
  LogList.prototype.refilter = async function () {
    if (this.filtering()) await this.loadAll();
    this.view = null;
    if (this.filtering()) {
      const v = [];
      for (let i = this.cleared; i < this.count; i++) if (this.shown(i)) v.push(i);
      this.view = v;
    }
    this.heights = [];
    this.tops = null;
    this.autoTop = undefined;
    this.findMatches();
    this.schedule(true);
  };

  LogList.prototype.extendView = function () {
    const from = this.view.length ? this.view[this.view.length - 1] + 1 : this.cleared;
    for (let i = from; i < this.count; i++) if (this.shown(i)) this.view.push(i);
  };

  LogList.prototype.clear = function () {
    this.cleared = this.count;
    this.foot.innerHTML = "";
    this.refilter();
  };

  /* Every line from the server (search, filter and copy look at all of them). */
  LogList.prototype.loadAll = async function () {
    if (!this.opts.runId) return;
    const todo = [];
    for (let p = 0; p * PAGE < this.count; p++) {
      if (this.pages[p] === "done") continue;
      let missing = false;
      for (let i = p * PAGE; i < Math.min(this.count, (p + 1) * PAGE); i++) if (!this.rows[i]) { missing = true; break; }
      if (missing) todo.push(p); else this.pages[p] = "done";
    }
    if (!todo.length) return;
    this.busy(true);
    const worker = async () => { while (todo.length) await this.fetchPage(todo.shift()); };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    this.busy(false);
  };

  LogList.prototype.busy = function (on) {
    if (this.searchCount) this.searchCount.textContent = on ? "loading all " + this.count.toLocaleString() + " lines…" : "";
  };

  LogList.prototype.fetchPage = async function (p) {
    if (this.pages[p] === "done") return;
    if (this.pages[p]) return this.pages[p];
    const url = "/api/runs/" + this.opts.runId + "/output?after=" + (p * PAGE) + "&limit=" + PAGE;
    this.pages[p] = fetch(url, { credentials: "same-origin" }).then(r => r.ok ? r.json() : { lines: [] })
      .then(data => { this.pages[p] = "done"; this.add(data.lines || []); })
      .catch(() => { delete this.pages[p]; });
    return this.pages[p];
  };

  /* ---- search ---- */

  LogList.prototype.setQuery = async function (q) {
    this.query = q.toLowerCase();
    const asked = this.query;
    if (this.query && this.missing() && !this.view && this.opts.runId) {
      // A long run: the server says which lines match; they load when shown.
      this.busy(true);
      const res = await fetch("/api/runs/" + this.opts.runId + "/output/search?q=" + encodeURIComponent(q),
        { credentials: "same-origin" }).then(r => r.ok ? r.json() : { seqs: [] }).catch(() => ({ seqs: [] }));
      this.busy(false);
      if (asked !== this.query) return;
      this.matches = res.seqs.map(seq => seq - 1 - this.cleared).filter(v => v >= 0);
      this.current = -1;
      this.extendMatches();  // lines that came since the server looked
    } else {
      if (this.query) await this.loadAll();
      if (asked !== this.query) return;
      this.findMatches();
    }
    if (this.matches.length) { this.current = 0; this.reveal(this.matches[0]); }
    this.showCount();
    this.schedule(true);
  };

  /* Whether some lines are not in the page (a long stored run). */
  LogList.prototype.missing = function () {
    let have = 0;
    for (let i = this.cleared; i < this.count; i++) if (this.rows[i]) have++;
    return have < this.count - this.cleared;
  };

  LogList.prototype.hit = function (i) {
    const l = this.rows[i];
    return !!l && String(l.text).toLowerCase().includes(this.query);
  };

  LogList.prototype.findMatches = function () {
    this.matches = [];
    this.current = -1;
    if (this.query) for (let v = 0, n = this.size(); v < n; v++) if (this.hit(this.indexAt(v))) this.matches.push(v);
    this.showCount();
  };

  LogList.prototype.extendMatches = function () {
    const from = this.matches.length ? this.matches[this.matches.length - 1] + 1 : 0;
    for (let v = from, n = this.size(); v < n; v++) if (this.hit(this.indexAt(v))) this.matches.push(v);
    this.showCount();
  };

  LogList.prototype.showCount = function () {
    if (!this.searchCount) return;
    this.searchCount.textContent = !this.query ? "" : this.matches.length
      ? (this.current + 1) + " of " + this.matches.length : "no match";
  };

  LogList.prototype.next = function (step) {
    if (!this.matches.length) return;
    this.current = (this.current + step + this.matches.length) % this.matches.length;
    this.reveal(this.matches[this.current]);
    this.showCount();
    this.schedule(true);
  };

  LogList.prototype.reveal = function (v) {
    this.stick = false;
    const top = this.top(v);
    this.box.scrollTop = Math.max(0, top - this.box.clientHeight / 2);
  };

  /* ---- copy ---- */

  LogList.prototype.text = function () {
    const out = [];
    for (let v = 0, n = this.size(); v < n; v++) {
      const l = this.rows[this.indexAt(v)];
      if (l) out.push(this.stamp(l) + "  " + (l.level ? "[" + l.level + "] " : "") + l.text);
    }
    return out.join("\n");
  };

  LogList.prototype.copy = async function (btn) {
    await this.loadAll();
    const text = this.text();
    try { await navigator.clipboard.writeText(text); }
    catch (e) {
      const area = el("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    btn.textContent = "Copied";
    setTimeout(() => { btn.textContent = "Copy"; }, 1200);
  };

  /* ---- drawing ---- */

  LogList.prototype.stamp = function (l) {
    if (!this.relative || this.t0 === null) return clock(l.time);
    return "+" + (l.time - this.t0).toFixed(3).padStart(8, " ") + "s";
  };

  LogList.prototype.draw = function (l) {
    const row = el("div", "line " + l.stream + (l.level ? " " + l.level : ""));
    row.dataset.seq = l.seq;
    row.appendChild(el("span", "t", this.stamp ? this.stamp(l) : clock(l.time)));
    const call = l.stream === "call" && String(l.text).match(CALL_RE);
    if (call) {
      // "send_cwmp_message SN1: 12.3 ms, ok": the call, then its latency
      const open = !!this.calls[l.seq];
      if (this.opts.runId && l.seq) {
        const btn = el("button", "open-call", open ? "▾" : "▸");
        btn.type = "button";
        btn.title = open ? "Hide the request and answer" : "Show the request and answer sent on the wire";
        btn.setAttribute("aria-expanded", open ? "true" : "false");
        btn.addEventListener("click", () => this.toggleCall(l.seq));
        row.appendChild(btn);
      }
      row.appendChild(this.mark(el("span", "x"), "→ " + call[1] + (call[2] ? " " + call[2] : "")));
      row.appendChild(el("span", "lat" + (call[4] === "ok" ? "" : " failed"), call[3] + " ms" + (call[4] === "ok" ? "" : " · failed")));
      if (open) { row.classList.add("open"); row.appendChild(this.wire(this.calls[l.seq])); }
    } else {
      if (l.stream === "log" && l.level) row.appendChild(el("span", "lvl", "[" + l.level + "]"));
      row.appendChild(this.mark(el("span", "x"), l.text));
    }
    return row;
  };

  /* ---- device calls opened in place ---- */

  LogList.prototype.toggleCall = function (seq) {
    if (this.calls[seq]) { delete this.calls[seq]; this.opened -= 1; }
    else { this.calls[seq] = { state: "loading" }; this.opened += 1; this.fetchCall(seq); }
    this.stick = false;  // the reader is looking at this line
    this.relayout();
  };

  /* Open a call line (the timeline's click): scrolled into view, opened. */
  LogList.prototype.openCall = async function (seq) {
    if (!this.rows[seq - 1]) await this.fetchPage(Math.floor((seq - 1) / PAGE));
    if (!this.shown(seq - 1)) { this.hidden.call = false; this.syncKinds(); await this.refilter(); }
    if (!this.calls[seq]) this.toggleCall(seq);
    const v = this.view ? this.view.indexOf(seq - 1) : seq - 1 - this.cleared;
    if (v >= 0) {
      this.stick = false;
      this.box.scrollTop = Math.max(0, this.top(v) - this.rowH * 2);
      this.schedule(true);
    }
  };

  LogList.prototype.syncKinds = function () {
    if (!this.bar) return;
    this.bar.querySelectorAll("input[data-stream]").forEach(b => { b.checked = !this.hidden[b.dataset.stream]; });
  };

  LogList.prototype.relayout = function () {
    this.heights = [];
    this.tops = null;
    this.autoTop = undefined;
    this.schedule(true);
  };

  LogList.prototype.fetchCall = async function (seq) {
    const url = "/api/runs/" + this.opts.runId + "/calls/" + seq;
    let entry;
    try {
      const res = await fetch(url, { credentials: "same-origin" });
      const data = await res.json();
      entry = res.ok ? { state: "done", data: data } : { state: "failed", error: data.error || ("the server answered " + res.status) };
    } catch (e) {
      entry = { state: "failed", error: "the server could not be reached" };
    }
    if (!this.calls[seq]) return;  // closed meanwhile
    this.calls[seq] = entry;
    this.relayout();
  };

  /* The request and the answer of an opened call. */
  LogList.prototype.wire = function (entry) {
    const box = el("div", "wire");
    if (entry.state === "loading") { box.appendChild(el("div", "muted", "Loading the request and answer…")); return box; }
    if (entry.state === "failed") { box.appendChild(el("div", "error", entry.error)); return box; }
    const c = entry.data;
    const proto = c.protocol === "cwmp" ? "TR-069" : c.protocol === "usp" ? "TR-369" : "";
    const head = [c.method || c.name, c.target, proto, c.line ? "line " + c.line : "", (c.latency_s * 1000).toFixed(1) + " ms"];
    box.appendChild(el("div", "wire-head", head.filter(Boolean).join(" · ")));
    if (!c.wire) { box.appendChild(el("div", "muted", c.why || "No request or answer was recorded.")); return box; }
    [["Request", c.wire.request], ["Answer", c.wire.answer]].forEach(([label, part]) => {
      const sec = el("div", "wire-part");
      sec.dataset.part = label.toLowerCase();
      const title = el("div", "wire-label", label + " (" + part.format.toUpperCase() + ")");
      if (part.note) title.appendChild(el("span", "muted", " " + part.note));
      sec.append(title, el("pre", "wire-text", part.text));
      box.appendChild(sec);
    });
    return box;
  };

  /* The text, with the search matches marked. */
  LogList.prototype.mark = function (span, text) {
    text = String(text);
    const q = this.query;
    if (!q) { span.textContent = text; return span; }
    const lower = text.toLowerCase();
    let at = 0;
    for (let i = lower.indexOf(q); i >= 0; i = lower.indexOf(q, at)) {
      span.appendChild(document.createTextNode(text.slice(at, i)));
      span.appendChild(el("mark", "", text.slice(i, i + q.length)));
      at = i + q.length;
    }
    span.appendChild(document.createTextNode(text.slice(at)));
    return span;
  };

  LogList.prototype.schedule = function (force) {
    if (force) this.dirty = true;
    if (this.frame) return;
    // A few lines draw at once (the first output shows without waiting for a
    // frame); a stream of them draws once per frame.
    if (this.size() < 200 && !this.drawnOnce) { this.render(); return; }
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.render(); });
  };

  /* Wrap mode: the top of every view position, from measured (or one-row) heights. */
  /* Rows have their own heights: wrapped lines, or opened device calls. */
  LogList.prototype.variable = function () { return this.wrap || this.opened > 0; };

  LogList.prototype.top = function (v) {
    if (!this.variable()) return v * this.rowH;
    this.layout();
    return this.tops[Math.min(v, this.tops.length - 1)];
  };

  LogList.prototype.layout = function () {
    const n = this.size();
    if (this.tops && this.tops.length === n + 1) return;
    const tops = new Float64Array(n + 1);
    for (let v = 0; v < n; v++) tops[v + 1] = tops[v] + (this.heights[v] || this.rowH);
    this.tops = tops;
  };

  LogList.prototype.firstAt = function (y) {
    if (!this.variable()) return Math.floor(y / this.rowH);
    this.layout();
    let lo = 0, hi = this.tops.length - 1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (this.tops[mid] <= y) lo = mid; else hi = mid - 1; }
    return lo;
  };

  LogList.prototype.render = function () {
    if (this.dead) return;
    this.drawnOnce = this.size() >= 200;
    const n = this.size();
    const box = this.box;
    if (this.variable()) this.layout();
    this.list.style.height = this.top(n) + "px";
    this.follow();
    const first = Math.max(0, this.firstAt(box.scrollTop) - OVERSCAN);
    const last = Math.min(n, this.firstAt(box.scrollTop + box.clientHeight) + OVERSCAN + 1);
    const want = [];
    const missing = new Set();
    for (let v = first; v < last; v++) {
      const i = this.indexAt(v);
      if (this.rows[i]) want.push(v); else missing.add(Math.floor(i / PAGE));
    }
    missing.forEach(p => this.fetchPage(p));
    // Rows still right are kept (a selection inside them survives); others go.
    const keep = {};
    if (!this.dirty) for (const r of Array.from(this.list.children)) {
      const v = Number(r.dataset.v);
      if (v >= first && v < last && this.rows[this.indexAt(v)]) keep[v] = r; else r.remove();
    } else this.list.innerHTML = "";
    this.dirty = false;
    const cur = this.current >= 0 ? this.matches[this.current] : -1;
    const frag = document.createDocumentFragment();
    const added = [];
    for (const v of want) {
      if (keep[v]) continue;
      const row = this.draw(this.rows[this.indexAt(v)]);
      row.dataset.v = v;
      row.style.top = this.top(v) + "px";
      if (v === cur) row.classList.add("current");
      frag.appendChild(row);
      added.push(row);
    }
    this.list.appendChild(frag);
    if (this.variable() && added.length) this.remeasure(added);
    this.follow();
    this.updateJump();
  };

  /* Wrapped rows are as tall as the browser makes them: measure the drawn ones
     and move the rows below when a height changed. */
  LogList.prototype.remeasure = function (added) {
    let changed = false;
    for (const row of added) {
      const v = Number(row.dataset.v);
      const h = row.getBoundingClientRect().height;
      if (Math.abs((this.heights[v] || this.rowH) - h) > 0.5) { this.heights[v] = h; changed = true; }
    }
    if (!changed) return;
    this.tops = null;
    this.layout();
    for (const row of this.list.children) row.style.top = this.top(Number(row.dataset.v)) + "px";
    this.list.style.height = this.top(this.size()) + "px";
  };

  LogList.prototype.follow = function () {
    if (!this.stick || this.dead) return;
    // The reader is scrolling (a smooth scroll moves over several frames): wait.
    if (performance.now() - this.userAt < 500) return;
    this.box.scrollTop = this.box.scrollHeight;
    this.autoTop = this.box.scrollTop;
  };

  LogList.prototype.scrollToEnd = function () {
    this.stick = true;
    this.follow();
    this.schedule();
  };

  LogList.prototype.updateJump = function () {
    if (this.jump) this.jump.style.display = this.stick || !this.size() ? "none" : "";
  };

  window.Okto = window.Okto || {};
  window.Okto.LogList = LogList;
  window.Okto.clock = clock;
})();
