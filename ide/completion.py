"""What the editor offers while typing: the API bindings from the registry
and the Lua standard library the sandbox keeps, with signatures and docs."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from django.utils.safestring import SafeString, mark_safe

from ide import uspschema
from ide.snippets import snippet_entries

# The standard library of the sandbox: name -> (signature, one-line doc).
LUA_STANDARD = {
    "print": ("print(...)", "Write the values to the run's output, separated by tabs."),
    "type": ("type(v)", 'The type of v as a string: "nil", "number", "string", "table"…'),
    "tostring": ("tostring(v)", "v converted to a string."),
    "tonumber": ("tonumber(v, base?)", "v converted to a number, or nil."),
    "pairs": ("pairs(t)", "Iterate over every key/value of a table."),
    "ipairs": ("ipairs(t)", "Iterate over t[1], t[2], … up to the first nil."),
    "next": ("next(t, k?)", "The key/value after k in table t."),
    "select": ("select(n, ...)", 'The arguments after the n-th, or their count with "#".'),
    "unpack": ("unpack(t, i?, j?)", "The elements of an array as multiple values."),
    "error": ("error(message, level?)", "Raise an error; the run fails with this message."),
    "assert": ("assert(v, message?)", "Raise an error if v is false or nil."),
    "pcall": ("pcall(f, ...)", "Call f in protected mode: ok, result_or_error."),
    "xpcall": ("xpcall(f, handler)", "Call f; on error call handler(err)."),
    "setmetatable": ("setmetatable(t, mt)", "Set the metatable of a table."),
    "getmetatable": ("getmetatable(t)", "The metatable of t."),
    "rawget": ("rawget(t, k)", "t[k] without metamethods."),
    "rawset": ("rawset(t, k, v)", "t[k] = v without metamethods."),
    "rawequal": ("rawequal(a, b)", "a == b without metamethods."),
    "string.format": ("string.format(fmt, ...)", "Format values like C's printf."),
    "string.find": ("string.find(s, pattern, init?, plain?)", "Start and end of a match."),
    "string.match": ("string.match(s, pattern, init?)", "The captures of the first match."),
    "string.gmatch": ("string.gmatch(s, pattern)", "Iterate over every match."),
    "string.gsub": ("string.gsub(s, pattern, repl, n?)", "Replace matches; returns s, count."),
    "string.sub": ("string.sub(s, i, j?)", "The substring from i to j."),
    "string.len": ("string.len(s)", "The length of s in bytes."),
    "string.lower": ("string.lower(s)", "s in lower case."),
    "string.upper": ("string.upper(s)", "s in upper case."),
    "string.rep": ("string.rep(s, n)", "s repeated n times."),
    "string.reverse": ("string.reverse(s)", "s reversed."),
    "string.byte": ("string.byte(s, i?, j?)", "The byte values of characters."),
    "string.char": ("string.char(...)", "A string of the given byte values."),
    "table.insert": ("table.insert(t, pos?, v)", "Insert v into an array."),
    "table.remove": ("table.remove(t, pos?)", "Remove and return an element of an array."),
    "table.concat": ("table.concat(t, sep?, i?, j?)", "Join the strings of an array."),
    "table.sort": ("table.sort(t, less?)", "Sort an array in place."),
    "math.floor": ("math.floor(x)", "The largest integer <= x."),
    "math.ceil": ("math.ceil(x)", "The smallest integer >= x."),
    "math.max": ("math.max(x, ...)", "The largest argument."),
    "math.min": ("math.min(x, ...)", "The smallest argument."),
    "math.abs": ("math.abs(x)", "The absolute value of x."),
    "math.random": ("math.random(m?, n?)", "A pseudo-random number."),
    "math.huge": ("math.huge", "Infinity."),
    "math.pi": ("math.pi", "π."),
    "os.time": ("os.time(t?)", "The current time (or of table t) in seconds."),
    "os.date": ("os.date(format?, time?)", "A date string or table."),
    "os.clock": ("os.clock()", "CPU time used by the run, in seconds."),
    "os.difftime": ("os.difftime(t2, t1)", "t2 - t1 in seconds."),
    "coroutine.create": ("coroutine.create(f)", "A new coroutine running f."),
    "coroutine.resume": ("coroutine.resume(co, ...)", "Start or continue a coroutine."),
    "coroutine.yield": ("coroutine.yield(...)", "Suspend the running coroutine."),
    "coroutine.wrap": ("coroutine.wrap(f)", "A function that resumes a new coroutine."),
    "coroutine.status": ("coroutine.status(co)", '"running", "suspended", "dead"…'),
    "debug.traceback": ("debug.traceback(message?)", "A traceback of the current stack."),
    "args": ("args", "The run's arguments, a table of key = value (strings)."),
}


def api_entries() -> list[dict[str, Any]]:
    """Every binding of the registry, as plain data (the API reference's entries)."""
    from oktoscripts.bindings import all_bindings
    from oktoscripts.bindings.reference import entry

    return [entry(b) for b in all_bindings()]


_SCRIPT_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


@lru_cache(maxsize=1)
def _completion_json() -> str:
    data = {
        "api": api_entries(),
        "lua": [{"name": k, "signature": s, "doc": d} for k, (s, d) in LUA_STANDARD.items()],
        "snippets": snippet_entries(),
        "usp": uspschema.schema(),
    }
    # As json_script: no "<", ">" or "&" can end or confuse the <script> element.
    return json.dumps(data).translate(_SCRIPT_ESCAPES)


def completion_data() -> SafeString:
    """The JSON for the editor page (safe to embed in a <script> element)."""
    return mark_safe(_completion_json())  # noqa: S308 - JSON with <, >, & escaped
