/* A run's arguments in the editor. The saved version declares them (name,
   type, default, description: Editors change them and Save makes them part of
   the next version); each row's value is what the next run gets, filled from
   your last run of the script (kept on the server) or the default. Named
   presets of values are the script's: Editors save them, whoever runs uses
   them. Types: text, number, true/false, JSON, or a device picked by serial,
   alias or vendor. */
(function () {
  "use strict";

  const TYPES = [["string", "text"], ["number", "number"], ["boolean", "true/false"],
                 ["json", "JSON"], ["device", "device"]];

  function el(tag, cls, text) { return window.Okto.el(tag, cls, text); }

  /* A value as its input shows it. */
  function shown(value, type) {
    if (value === undefined || value === null) return "";
    if (type === "json" || typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  /* The type a value of undeclared arguments has. */
  function typeOf(value) {
    if (typeof value === "number") return "number";
    if (typeof value === "boolean") return "boolean";
    if (value !== null && typeof value === "object") return "json";
    return "string";
  }

  /* The value an input holds, of its type; an Error naming the argument. */
  function parse(name, type, raw) {
    if (type === "number") {
      if (raw.trim() === "" || !isFinite(Number(raw))) throw new Error("argument " + name + " must be a number");
      return Number(raw);
    }
    if (type === "boolean") {
      if (!/^(true|false)$/i.test(raw.trim())) throw new Error("argument " + name + " must be true or false");
      return raw.trim().toLowerCase() === "true";
    }
    if (type === "json") {
      try { return JSON.parse(raw); } catch (e) { throw new Error("argument " + name + " is not JSON: " + e.message); }
    }
    return raw;
  }

  /* box: the rows' container; empty: the "none" note; opts: {declarations,
     last, presets, presetBar, scriptId, canEdit, canRun, onChange}. */
  function ArgumentRows(box, empty, opts) {
    this.box = box;
    this.empty = empty;
    this.opts = opts || {};
    this.lists = 0;
    this.saved = JSON.stringify(this.opts.declarations || []);
    const last = this.opts.last || {};
    (this.opts.declarations || []).forEach(d => {
      const value = Object.prototype.hasOwnProperty.call(last, d.name) ? last[d.name] : d.default;
      this.add(d.name, d.type, value, d);
    });
    const declared = new Set((this.opts.declarations || []).map(d => d.name));
    Object.keys(last).filter(n => !declared.has(n)).forEach(n => this.add(n, typeOf(last[n]), last[n], null));
    if (this.opts.presetBar) this.presetBar(this.opts.presetBar);
    this.update();
  }

  /* d: the row's declaration ({default, description}); null: a new argument. */
  ArgumentRows.prototype.add = function (name, type, value, d) {
    type = type === "text" ? "string" : (type || "string");
    const row = el("div", "arg");
    const line = el("div", "row");
    row.nameIn = el("input"); row.nameIn.placeholder = "name"; row.nameIn.setAttribute("aria-label", "argument name");
    row.typeIn = el("select"); row.typeIn.setAttribute("aria-label", "argument type");
    TYPES.forEach(([v, label]) => { const o = el("option", "", label); o.value = v; row.typeIn.appendChild(o); });
    row.valueIn = el("input"); row.valueIn.setAttribute("aria-label", "argument value");
    row.nameIn.value = name || ""; row.typeIn.value = type; row.valueIn.value = shown(value, type);
    const editable = !!this.opts.canEdit;
    row.nameIn.readOnly = !editable && !!d; row.typeIn.disabled = !editable && !!d;
    line.append(row.nameIn, row.typeIn, row.valueIn);
    if (editable || !d) {
      const remove = el("button", "btn small", "×"); remove.type = "button"; remove.title = "remove";
      remove.addEventListener("click", () => { row.remove(); this.update(); });
      line.appendChild(remove);
    }
    row.appendChild(line);
    row.descIn = el("input", "arg-desc");
    row.descIn.placeholder = "description (for whoever runs it)";
    row.descIn.setAttribute("aria-label", "argument description");
    row.descIn.value = d ? d.description || "" : "";
    row.defaultIn = el("input", "arg-default");
    row.defaultIn.placeholder = "default (empty: none)";
    row.defaultIn.setAttribute("aria-label", "argument default");
    row.defaultIn.value = d ? shown(d.default, type) : "";
    if (editable) {
      const more = el("div", "row arg-decl");
      more.append(row.defaultIn, row.descIn);
      row.appendChild(more);
    } else if (row.descIn.value) row.appendChild(el("div", "muted arg-help", row.descIn.value));
    [row.nameIn, row.typeIn, row.defaultIn, row.descIn].forEach(i => i.addEventListener("input", () => this.changed()));
    row.typeIn.addEventListener("change", () => { this.kind(row); this.changed(); });
    this.box.appendChild(row);
    this.kind(row);
    this.update();
    return row;
  };

  /* A device argument picks from the devices (serial, alias, vendor or status). */
  ArgumentRows.prototype.kind = function (row) {
    const valueIn = row.valueIn;
    valueIn.placeholder = { number: "42", boolean: "true or false", json: '{"a": 1}', device: "serial, alias, vendor…" }[row.typeIn.value] || "value";
    if (row.typeIn.value !== "device" || valueIn.list) return;
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
    this.changed();
  };

  ArgumentRows.prototype.changed = function () { if (this.opts.onChange) this.opts.onChange(); };

  ArgumentRows.prototype.rows = function () {
    return Array.from(this.box.children).filter(r => r.nameIn && r.nameIn.value.trim());
  };

  /* The arguments as the run takes them; an Error naming the wrong one. */
  ArgumentRows.prototype.collect = function () {
    const args = {};
    for (const row of this.rows()) {
      const name = row.nameIn.value.trim();
      args[name] = parse(name, row.typeIn.value, row.valueIn.value);
    }
    return args;
  };

  /* The declarations as the next version keeps them; an Error for a wrong default. */
  ArgumentRows.prototype.declarations = function () {
    return this.rows().map(row => {
      const name = row.nameIn.value.trim();
      const raw = row.defaultIn.value;
      return {
        name: name, type: row.typeIn.value,
        default: raw === "" ? null : parse(name + " (default)", row.typeIn.value, raw),
        description: row.descIn.value,
      };
    });
  };

  /* Whether the declarations differ from the saved version's. */
  ArgumentRows.prototype.dirty = function () {
    try { return JSON.stringify(this.declarations()) !== this.saved; } catch (e) { return true; }
  };

  ArgumentRows.prototype.markSaved = function (declarations) { this.saved = JSON.stringify(declarations); this.changed(); };

  /* Fill the values of a preset (adding rows for arguments not there). */
  ArgumentRows.prototype.apply = function (args) {
    const rows = {};
    for (const row of this.rows()) rows[row.nameIn.value.trim()] = row;
    Object.keys(args).forEach(name => {
      const row = rows[name];
      if (row) row.valueIn.value = shown(args[name], row.typeIn.value);
      else this.add(name, typeOf(args[name]), args[name], null);
    });
  };

  /* Presets: choose one to fill the values; Editors save the values as one, or delete one. */
  ArgumentRows.prototype.presetBar = function (bar) {
    const select = el("select", "preset-choice");
    select.setAttribute("aria-label", "argument preset");
    const fill = () => {
      select.innerHTML = "";
      const none = el("option", "", this.opts.presets.length ? "preset…" : "no presets"); none.value = "";
      select.appendChild(none);
      this.opts.presets.forEach(p => { const o = el("option", "", p.name); o.value = p.name; select.appendChild(o); });
    };
    fill();
    select.addEventListener("change", () => {
      const p = this.opts.presets.find(x => x.name === select.value);
      if (p) this.apply(p.args);
    });
    bar.appendChild(select);
    if (!this.opts.canEdit) return;
    const url = (name) => "/api/scripts/" + this.opts.scriptId + "/presets/" + encodeURIComponent(name);
    const save = el("button", "btn small", "Save as preset"); save.type = "button"; save.id = "save-preset";
    save.title = "Save these values under a name, for everyone who runs this script";
    save.addEventListener("click", async () => {
      let args;
      try { args = this.collect(); } catch (e) { alert(e.message); return; }
      const name = (prompt("Preset name", select.value || "") || "").trim();
      if (!name) return;
      try {
        const p = await window.Okto.api("PUT", url(name), { args: args });
        this.opts.presets = this.opts.presets.filter(x => x.name !== name).concat([p]).sort((a, b) => a.name.localeCompare(b.name));
        fill();
        select.value = name;
      } catch (e) { alert("Preset not saved: " + e.message); }
    });
    const del = el("button", "btn small", "Delete"); del.type = "button"; del.title = "Delete the chosen preset";
    del.addEventListener("click", async () => {
      if (!select.value || !confirm("Delete the preset " + select.value + "?")) return;
      try {
        await window.Okto.api("DELETE", url(select.value));
        this.opts.presets = this.opts.presets.filter(x => x.name !== select.value);
        fill();
      } catch (e) { alert("Preset not deleted: " + e.message); }
    });
    bar.append(save, del);
  };

  window.Okto = window.Okto || {};
  window.Okto.ArgumentRows = ArgumentRows;
})();
