/* A run's arguments in the editor: each a name, a type (text, number,
   true/false, JSON, or a device picked by serial, alias or vendor) and a
   value; the arguments of the last run are kept per user and script in this
   browser. */
(function () {
  "use strict";

  const TYPES = [["text", "text"], ["number", "number"], ["boolean", "true/false"],
                 ["json", "JSON"], ["device", "device"]];

  function el(tag, cls) { const e = document.createElement(tag); if (cls) e.className = cls; return e; }

  /* box: the rows' container; empty: the "none" note; key: where the last
     arguments are kept (null: not kept). */
  function ArgumentRows(box, empty, key) {
    this.box = box;
    this.empty = empty;
    this.key = key;
    this.lists = 0;
    const last = key && localStorage.getItem(key);
    if (last) {
      try { JSON.parse(last).forEach(a => this.add(a.name, a.type, a.value)); } catch (e) { /* an old format */ }
    }
    this.update();
  }

  ArgumentRows.prototype.add = function (name, type, value) {
    const row = el("div", "row arg");
    const nameIn = el("input"); nameIn.placeholder = "name"; nameIn.setAttribute("aria-label", "argument name");
    const typeIn = el("select"); typeIn.setAttribute("aria-label", "argument type");
    TYPES.forEach(([v, label]) => { const o = el("option"); o.value = v; o.textContent = label; typeIn.appendChild(o); });
    const valueIn = el("input"); valueIn.placeholder = "value"; valueIn.setAttribute("aria-label", "argument value");
    const remove = el("button", "btn small"); remove.type = "button"; remove.title = "remove"; remove.textContent = "×";
    nameIn.value = name || ""; typeIn.value = type || "text"; valueIn.value = value === undefined ? "" : value;
    remove.addEventListener("click", () => { row.remove(); this.update(); });
    typeIn.addEventListener("change", () => this.kind(row));
    row.append(nameIn, typeIn, valueIn, remove);
    this.box.appendChild(row);
    this.kind(row);
    this.update();
    return row;
  };

  /* A device argument picks from the devices (serial, alias, vendor or status). */
  ArgumentRows.prototype.kind = function (row) {
    const [, typeIn, valueIn] = row.children;
    valueIn.placeholder = { number: "42", boolean: "true or false", json: '{"a": 1}', device: "serial, alias, vendor…" }[typeIn.value] || "value";
    if (typeIn.value !== "device" || valueIn.list) return;
    const list = el("datalist");
    list.id = "device-choices-" + (++this.lists);
    row.appendChild(list);
    valueIn.setAttribute("list", list.id);
    let timer = null;
    valueIn.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.suggest(valueIn.value, list), 200);
    });
    this.suggest("", list);
  };

  ArgumentRows.prototype.suggest = async function (text, list) {
    const q = text.trim();
    const asks = [fetch("/api/devices?page_size=20&q=" + encodeURIComponent(q), { credentials: "same-origin" })];
    if (q) asks.push(fetch("/api/devices?page_size=20&vendor=" + encodeURIComponent(q), { credentials: "same-origin" }));
    const found = new Map();
    for (const res of await Promise.all(asks.map(p => p.catch(() => null)))) {
      if (!res || !res.ok) continue;
      (await res.json()).results.forEach(d => found.set(d.sn, d));
    }
    list.innerHTML = "";
    found.forEach(d => {
      const o = el("option");
      o.value = d.sn;
      o.label = [d.alias, d.vendor, d.model, d.status_name].filter(Boolean).join(" · ");
      list.appendChild(o);
    });
  };

  ArgumentRows.prototype.update = function () {
    if (this.empty) this.empty.style.display = this.box.children.length ? "none" : "";
  };

  /* The arguments as the run takes them; an Error naming the wrong one. */
  ArgumentRows.prototype.collect = function () {
    const args = {};
    for (const row of this.box.children) {
      const [nameIn, typeIn, valueIn] = row.children;
      const name = nameIn.value.trim();
      if (!name) continue;
      const raw = valueIn.value;
      if (typeIn.value === "number") {
        if (raw.trim() === "" || !isFinite(Number(raw))) throw new Error("argument " + name + " must be a number");
        args[name] = Number(raw);
      } else if (typeIn.value === "boolean") {
        if (!/^(true|false)$/i.test(raw.trim())) throw new Error("argument " + name + " must be true or false");
        args[name] = raw.trim().toLowerCase() === "true";
      } else if (typeIn.value === "json") {
        try { args[name] = JSON.parse(raw); } catch (e) { throw new Error("argument " + name + " is not JSON: " + e.message); }
      } else args[name] = raw;
    }
    return args;
  };

  /* Keep these arguments for the next visit (after a run started). */
  ArgumentRows.prototype.remember = function () {
    if (!this.key) return;
    const rows = Array.from(this.box.children).map(r => ({ name: r.children[0].value, type: r.children[1].value, value: r.children[2].value }));
    localStorage.setItem(this.key, JSON.stringify(rows.filter(r => r.name.trim())));
  };

  window.Okto = window.Okto || {};
  window.Okto.ArgumentRows = ArgumentRows;
})();
