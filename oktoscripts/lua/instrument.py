"""Budget checks written into LuaJIT scripts, so compiled loops can be stopped.

LuaJIT's compiled code never calls hooks: a hot `while true do end` becomes a
machine-code loop that no count hook, and nothing outside the thread, can
stop. For runs on LuaJIT the engine therefore rewrites the script before
compiling it: at the start of every block that can repeat (after `do`,
`repeat`), before every `goto` and before every tail call, it inserts

    C=C-1 if C<0 then C=X() end;

where C and X have unguessable names: C a local of the chunk's main function
(its other functions share it as an upvalue), X an upvalue. In a compiled
loop of the main function the counter is a register: a decrement and a
compare per iteration. When it runs out, the trace exits and X (the engine's
budget function) checks the limits like the hook does, raising the limit
error at the script's line, and says how many iterations to allow until the
next check.

A main function already at Lua's limit of 200 locals has no room for C: for
it, the fallback form makes C an upvalue of a wrapper, like X.

The insertion never adds a line, so line numbers in errors stay right. Only
syntactically valid source is rewritten (the engine compiles the original
first, so syntax errors are reported on the script as written).
"""

from __future__ import annotations

import re
import secrets

# One token at a time; strings, comments and long brackets are skipped whole.
_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>--(?:\[(?P<ceq>=*)\[.*?\](?P=ceq)\]|[^\n]*))
    | (?P<long>\[(?P<leq>=*)\[.*?\](?P=leq)\])
    | (?P<string>"(?:\\.|\\\n|[^"\\\n])*"|'(?:\\.|\\\n|[^'\\\n])*')
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<number>\.?[0-9](?:[eEpP][+-]|[0-9A-Za-z_.])*)
    | (?P<symbol>\.\.\.|\.\.|==|~=|<=|>=|.)
    """,
    re.S | re.X,
)


def budget_names() -> tuple[str, str]:
    """Fresh upvalue names for one run (a script cannot guess them)."""
    suffix = secrets.token_hex(6)
    return f"_C{suffix}", f"_X{suffix}"


def instrument(source: str, counter: str, budget: str) -> str:
    """`source` as the body of a function that gets `budget` as an upvalue,
    with a check at the start of every loop body and before every tail call
    (the only other way to run forever without growing the stack).

    The result is a chunk returning the script's main function:
    ``local X = ...; return function(...) local C = 0; <source> end``.
    """
    return instrument_with_fallback(source, counter, budget)[0]


def instrument_with_fallback(source: str, counter: str, budget: str) -> tuple[str, str]:
    """instrument(), and the fallback form for a main function that has no
    room for one more local:
    ``local C, X = 0, ...; return function(...) <source> end``."""
    check = f" {counter}={counter}-1 if {counter}<0 then {counter}={budget}() end; "
    tokens = [
        (m.lastgroup, m.group(), m.start(), m.end())
        for m in _TOKEN.finditer(source)
        if m.lastgroup not in ("space", "comment")
    ]
    inserts: list[int] = []  # source offsets where a check goes
    for i, (kind, text, start, end) in enumerate(tokens):
        if kind == "name" and text in ("do", "repeat"):
            inserts.append(end)
        elif kind == "name" and text == "return" and _is_tail_call(tokens, i + 1):
            inserts.append(start)
        elif kind == "name" and text == "goto":
            # Before the jump, not after its label: a statement after a
            # "continue" label would put the label in the scope of locals.
            inserts.append(start)
    out: list[str] = []
    pos = 0
    for offset in inserts:
        out.append(source[pos:offset])
        out.append(check)
        pos = offset
    out.append(source[pos:])
    body = "".join(out)
    return (
        f"local {budget} = ...; return function(...) local {counter} = 0;{check}{body}\nend",
        f"local {counter}, {budget} = 0, ...; return function(...) {check}{body}\nend",
    )


_BLOCK_END = {"end", "else", "elseif", "until", ";"}
_OPEN = {"(": ")", "[": "]", "{": "}"}


def _skip_brackets(tokens: list[tuple], i: int) -> int:
    """Index after the bracket group opening at tokens[i]."""
    depth = 0
    while i < len(tokens):
        text = tokens[i][1]
        if tokens[i][0] == "symbol" and text in _OPEN:
            depth += 1
        elif tokens[i][0] == "symbol" and text in (")", "]", "}"):
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _is_tail_call(tokens: list[tuple], i: int) -> bool:
    """Whether `return` followed by tokens[i:] returns a single call."""
    if i >= len(tokens):
        return False
    kind, text = tokens[i][0], tokens[i][1]
    if kind == "name" and text not in _KEYWORDS:
        i += 1
    elif kind == "symbol" and text == "(":
        i = _skip_brackets(tokens, i)
    else:
        return False
    called = False
    while i < len(tokens):
        kind, text = tokens[i][0], tokens[i][1]
        if kind == "symbol" and text == "." and i + 1 < len(tokens):
            i, called = i + 2, False
        elif kind == "symbol" and text == ":" and i + 1 < len(tokens):
            i, called = i + 2, False
        elif kind == "symbol" and text == "[":
            i, called = _skip_brackets(tokens, i), False
        elif kind == "symbol" and text in ("(", "{"):
            i, called = _skip_brackets(tokens, i), True
        elif kind in ("string", "long"):
            i, called = i + 1, True
        else:
            break
    at_end = i >= len(tokens) or tokens[i][1] in _BLOCK_END
    return called and at_end


_KEYWORDS = frozenset(
    "and break do else elseif end false for function goto if in local nil not or "
    "repeat return then true until while".split()
)
