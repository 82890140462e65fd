/* Where the cursor is inside a send_usp_message payload, a Lua table
   ({body = {request = {get = {...}}}}) or a JSON string ('{"body": ...}'):
   the keys of the tables around it, whether a key or a value is being typed,
   the key whose value it is, and the strings already given beside it (an
   Operate's command, a Set's obj_path). The editor offers the Msg's fields
   there (ide/uspschema.py: from the protobuf the controller parses with),
   request shapes, and data-model paths in the values that are paths. */
(function () {
  "use strict";

  const CALL = /send_usp_message\s*\(/g;

  /* The payload argument's text up to the cursor, or null when the cursor is
     not in a send_usp_message call's second argument. */
  function payloadBefore(text) {
    let start = -1;
    for (const m of text.matchAll(CALL)) start = m.index + m[0].length;
    if (start < 0) return null;
    const args = text.slice(start);
    let depth = 0, quote = null;
    for (let i = 0; i < args.length; i++) {
      const c = args[i];
      if (quote) { if (c === "\\") i++; else if (c === quote) quote = null; continue; }
      if (c === '"' || c === "'") quote = c;
      else if (c === "(" || c === "{" || c === "[") depth++;
      else if (c === ")" || c === "}" || c === "]") { if (depth === 0) return null; depth--; }
      else if (c === "," && depth === 0) return args.slice(i + 1);
    }
    return null;
  }

  function level(key, list) { return { key: key, list: list, current: null, pending: null, strings: {} }; }

  /* The context at the end of `payload` (see above), or null. */
  function context(payload) {
    const lead = payload.match(/^\s*/)[0].length;
    const first = payload[lead];
    if (first === undefined) return { mode: "lua", keys: [], position: "start", partial: "" };
    const json = first === '"' || first === "'";
    const quote = json ? first : null;
    const t = json ? payload.slice(lead + 1) : payload.slice(lead);
    if (!t.startsWith("{")) return null;
    const stack = [];
    let i = 0, last = null;  // last: the kind of the last token
    const top = () => stack[stack.length - 1];
    while (i < t.length) {
      const c = t[i];
      if (json && c === quote) return null;  // past the payload string
      if (/\s/.test(c)) { i++; if (last === "ident") last = "space"; continue; }
      if (!json && c === "-" && t[i + 1] === "-") { const nl = t.indexOf("\n", i); if (nl < 0) return null; i = nl; continue; }
      const L = top();
      if (c === '"' || c === "'") {
        const q = json ? '"' : c;
        if (json && c !== '"') return null;
        let j = i + 1, s = "";
        while (j < t.length && t[j] !== q) { if (t[j] === "\\") { s += t[j + 1] || ""; j += 2; } else s += t[j++]; }
        if (j >= t.length) return ends(stack, json, "string", s);
        if (L) {
          if (json && !L.list && L.current === null) L.pending = s;
          else if (L.current !== null) L.strings[L.current] = s;
        }
        i = j + 1; last = "string"; continue;
      }
      if (c === "{" || c === "[") {
        const key = L && !L.list ? L.current : null;  // null: an element of a list
        // A Lua "{" in a list, or a JSON "[": a list of elements; "{" of a message otherwise.
        const list = json ? c === "[" : !!(L && L.current && isList(L.current));
        stack.push(level(key, list));
        i++; last = "open"; continue;
      }
      if (c === "}" || c === "]") { stack.pop(); if (!stack.length) return null; i++; last = "close"; continue; }
      if (c === "," || c === ";") { if (L) { L.current = null; L.pending = null; } i++; last = "sep"; continue; }
      if ((json && c === ":") || (!json && c === "=")) { if (L) { L.current = L.pending; L.pending = null; } i++; last = "assign"; continue; }
      const word = t.slice(i).match(/^[A-Za-z_][\w.]*|^[\d.]+/);
      if (!word) { i++; continue; }
      if (L && !json && L.current === null && /^[A-Za-z_]/.test(word[0])) L.pending = word[0];
      i += word[0].length;
      last = "ident";
      if (i >= t.length) return ends(stack, json, "ident", word[0]);
    }
    return ends(stack, json, last, "");
  }

  /* Lua tables are lists or messages by what the schema says of their key;
     the scanner asks the schema through this hook (set by the editor). */
  let listKeys = new Set();
  function isList(key) { return listKeys.has(key); }

  function ends(stack, json, how, partial) {
    if (!stack.length) return null;
    const L = stack[stack.length - 1];
    const keys = stack.slice(1).map(s => s.key);
    const out = { mode: json ? "json" : "lua", keys: keys, partial: partial, levels: stack,
                  inString: how === "string", list: L.list };
    if (how === "string") {
      if (L.list) return Object.assign(out, { position: "value", key: L.key });
      if (L.current !== null) return Object.assign(out, { position: "value", key: L.current });
      return Object.assign(out, { position: json ? "key" : "value", key: null });
    }
    if (L.current !== null) return Object.assign(out, { position: "value", key: L.current });
    return Object.assign(out, { position: L.list ? "value" : "key", key: L.list ? L.key : null });
  }

  /* The schema node at `keys` from the Msg (null: no such field). */
  function node(msg, keys) {
    let n = msg;
    for (const k of keys) {
      if (!n) return null;
      if (k === null) { if (!n.repeated) return null; n = Object.assign({}, n, { repeated: false }); continue; }
      if (n.repeated || n.type !== "message") return null;
      n = n.fields[k] || null;
    }
    return n;
  }

  /* Every field name that holds a list, for the Lua scanner. */
  function collectLists(n, out) {
    if (!n || !n.fields) return out;
    for (const [k, f] of Object.entries(n.fields)) { if (f.repeated) out.add(k); collectLists(f, out); }
    return out;
  }

  window.Okto = window.Okto || {};
  window.Okto.usp = {
    payloadBefore: payloadBefore,
    context: context,
    node: node,
    useSchema(schema) { listKeys = collectLists(schema.msg, new Set()); },
  };
})();
