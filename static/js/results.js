/* A run's returned value, as tables one can work with: an array of records is
   a grid (serial first, then the keys in the order they first appear), sorted
   by a click on a heading and filtered by text; nested tables open in place;
   the value downloads as CSV or JSON. */
(function () {
  "use strict";

  // Keys that name a device come first, in this order.
  const FIRST = ["sn", "serial", "serial_number", "SerialNumber"];
  const MAX_COLUMNS = 60;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function isRecord(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }
  function size(v) { return Array.isArray(v) ? v.length : Object.keys(v).length; }

  function scalar(v) {
    if (v === null || v === undefined) return el("span", "nil", "nil");
    if (typeof v === "string") return el("span", "str", v);
    if (typeof v === "number") return el("span", "num", String(v));
    if (typeof v === "boolean") return el("span", "bool", String(v));
    return el("span", "", String(v));
  }

  /* The columns of an array of records: device keys, then first-seen order. */
  function columns(rows) {
    const seen = [];
    const known = new Set();
    rows.forEach(r => Object.keys(r).forEach(k => { if (!known.has(k)) { known.add(k); seen.push(k); } }));
    const first = FIRST.filter(k => known.has(k));
    return first.concat(seen.filter(k => !first.includes(k))).slice(0, MAX_COLUMNS);
  }

  /* A value as HTML: array of records -> grid, map -> key/value rows, nested
     tables folded in <details> that open in place. */
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
    if (Array.isArray(v) && v.length && v.every(isRecord)) return renderGrid(v, depth);
    const table = el("table", "value");
    const entries = Array.isArray(v) ? v.map((x, i) => [String(i + 1), x]) : Object.entries(v);
    if (!entries.length) return el("div", "nil", "empty table");
    entries.forEach(([k, x]) => {
      const tr = el("tr");
      tr.appendChild(el("td", "key", k));
      const td = el("td"); td.appendChild(renderValue(x, depth + 1)); tr.appendChild(td);
      table.appendChild(tr);
    });
    return table;
  }

  /* Sort order: numbers by value, then text, nil last. */
  function compare(a, b) {
    const na = a === null || a === undefined, nb = b === null || b === undefined;
    if (na || nb) return na === nb ? 0 : (na ? 1 : -1);
    if (typeof a === "number" && typeof b === "number") return a - b;
    const sa = typeof a === "object" ? JSON.stringify(a) : String(a);
    const sb = typeof b === "object" ? JSON.stringify(b) : String(b);
    return sa.localeCompare(sb, undefined, { numeric: true });
  }

  function cellText(v) {
    if (v === null || v === undefined) return "";
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  }

  function renderGrid(rows, depth) {
    const cols = columns(rows);
    const wrap = el("div", "grid-wrap");
    const state = { col: null, dir: 1, filter: "" };
    if (depth === 0) {
      const tools = el("div", "grid-tools");
      const filter = el("input", "filter");
      filter.type = "search";
      filter.placeholder = "Filter rows";
      filter.setAttribute("aria-label", "Filter the result's rows");
      const count = el("span", "muted count");
      filter.addEventListener("input", () => { state.filter = filter.value.toLowerCase(); draw(); });
      tools.append(filter, count);
      wrap.appendChild(tools);
      state.count = count;
    }
    const table = el("table", "value");
    const head = el("tr");
    head.appendChild(el("th", "", "#"));
    cols.forEach(c => {
      const th = el("th", "sortable", c);
      th.title = "Sort by " + c;
      th.addEventListener("click", () => {
        state.dir = state.col === c ? -state.dir : 1;
        state.col = c;
        head.querySelectorAll("th").forEach(x => x.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
        draw();
      });
      head.appendChild(th);
    });
    const thead = el("thead");
    thead.appendChild(head);
    const body = el("tbody");
    table.append(thead, body);
    wrap.appendChild(table);

    function draw() {
      let shown = rows.map((r, i) => [r, i]);
      if (state.filter) shown = shown.filter(([r]) => cols.some(c => cellText(r[c]).toLowerCase().includes(state.filter)));
      if (state.col !== null) shown.sort((a, b) => state.dir * compare(a[0][state.col], b[0][state.col]) || a[1] - b[1]);
      body.innerHTML = "";
      const frag = document.createDocumentFragment();
      shown.forEach(([r, i]) => {
        const tr = el("tr");
        tr.appendChild(el("td", "key", String(i + 1)));
        cols.forEach(c => { const td = el("td"); if (c in r) td.appendChild(renderValue(r[c], depth + 1)); tr.appendChild(td); });
        frag.appendChild(tr);
      });
      body.appendChild(frag);
      if (state.count) state.count.textContent = state.filter ? shown.length + " of " + rows.length + " rows" : rows.length + " rows";
    }
    draw();
    return wrap;
  }

  /* ---- export ---- */

  function csvField(v) {
    const s = cellText(v);
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  function toCsv(v) {
    let header, lines;
    if (Array.isArray(v) && v.length && v.every(isRecord)) {
      header = columns(v);
      lines = v.map(r => header.map(c => r[c]));
    } else if (v !== null && typeof v === "object") {
      header = ["key", "value"];
      lines = (Array.isArray(v) ? v.map((x, i) => [i + 1, x]) : Object.entries(v));
    } else {
      header = ["value"];
      lines = [[v]];
    }
    return [header].concat(lines).map(row => row.map(csvField).join(",")).join("\r\n") + "\r\n";
  }

  function download(name, type, text) {
    const a = el("a");
    a.href = URL.createObjectURL(new Blob([text], { type: type }));
    a.download = name;
    document.body.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  /* The result box of a run that ended (msg: the console's "end" message). */
  function showResult(box, msg) {
    box.innerHTML = "";
    const head = el("div", "result-head");
    head.appendChild(el("h2", "", "Result"));
    const metrics = msg.metrics || {};
    if (metrics.duration_s !== undefined) head.appendChild(el("span", "muted", (metrics.duration_s * 1000).toFixed(1) + " ms"));
    const value = msg.result === undefined ? null : msg.result;
    const button = (text, action, fn) => {
      const b = el("button", "btn small", text);
      b.type = "button";
      b.dataset.action = action;
      b.addEventListener("click", fn);
      head.appendChild(b);
      return b;
    };
    const name = "result-" + (msg.run_id || "run").slice(0, 8);
    if (value !== null) {
      button("CSV", "csv", () => download(name + ".csv", "text/csv", toCsv(value)));
      button("JSON", "json", () => download(name + ".json", "application/json", JSON.stringify(value, null, 2)));
    }
    const toggle = button("Raw JSON", "raw", () => {
      const showRaw = raw.style.display === "none";
      raw.style.display = showRaw ? "" : "none";
      table.style.display = showRaw ? "none" : "";
      toggle.textContent = showRaw ? "Table" : "Raw JSON";
    });
    box.appendChild(head);
    const table = el("div", "result-table");
    const raw = el("pre", "json");
    raw.style.display = "none";
    if (value === null) table.appendChild(el("div", "nil", msg.status === "succeeded" ? "The script returned nothing." : "No result."));
    else table.appendChild(renderValue(value, 0));
    raw.textContent = JSON.stringify(value, null, 2);
    box.appendChild(table);
    box.appendChild(raw);
  }

  window.Okto = window.Okto || {};
  window.Okto.renderValue = renderValue;
  window.Okto.showResult = showResult;
  window.Okto.resultCsv = toCsv;
})();
