"""Budget checks written into LuaJIT scripts, so compiled code can be stopped.

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

Code without loops runs for long only by calling functions (a recursion
like fib(40), or one through metamethods), so every function that can call
another one counts its calls too: `K();` where K (an upvalue, with a
counter of its own) does the same as the line above. Measured, a check at
the very entry of a small recursive function costs it a third of its speed
once compiled, while one placed after its base case (which calls nothing)
costs next to nothing; so the check goes before the first statement of the
function body that can call anything (a call, an indexing, an arithmetic or
concatenation that may reach a metamethod, a global, which is an indexing
of the environment). An activation that never reaches it calls nothing, and
its own work is bounded: between two checks there is never more than one
descent of the call stack.

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


def budget_names() -> tuple[str, str, str]:
    """Fresh upvalue names for one run (a script cannot guess them): the
    loop counter, the budget function, the call check."""
    suffix = secrets.token_hex(6)
    return f"_C{suffix}", f"_X{suffix}", f"_K{suffix}"


def instrument(source: str, counter: str, budget: str, entry: str) -> str:
    """`source` as the body of a function that gets `budget` and `entry` as
    upvalues, with a check at the start of every loop body, before every
    tail call and goto, and in every function that can call another.

    The result is a chunk returning the script's main function:
    ``local X, K = ...; return function(...) local C = 0; <source> end``.
    """
    return instrument_with_fallback(source, counter, budget, entry)[0]


def instrument_with_fallback(
    source: str, counter: str, budget: str, entry: str, extra: str = ""
) -> tuple[str, str]:
    """instrument(), and the fallback form for a main function that has no
    room for one more local:
    ``local C, X, K = 0, ...; return function(...) <source> end``.
    `extra` names one more upvalue passed after K (a debug run's line
    function, see debuglines.py)."""
    check = f" {counter}={counter}-1 if {counter}<0 then {counter}={budget}() end; "
    call_check = f" {entry}(); "
    tokens = [
        (m.lastgroup, m.group(), m.start(), m.end())
        for m in _TOKEN.finditer(source)
        if m.lastgroup not in ("space", "comment")
    ]
    inserts: dict[int, str] = {}  # source offset -> the check that goes there
    for i, (kind, text, start, end) in enumerate(tokens):
        if kind != "name":
            continue
        if text in ("do", "repeat"):
            inserts[end] = check
        elif text == "return" and _is_tail_call(tokens, i + 1):
            inserts.setdefault(start, check)
        elif text == "goto":
            # Before the jump, not after its label: a statement after a
            # "continue" label would put the label in the scope of locals.
            inserts.setdefault(start, check)
        elif text == "function":
            at = _call_check_position(tokens, i)
            if at is not None:
                # Replaces a tail call's check at the same place: one is enough.
                inserts[tokens[at][2]] = call_check
    out: list[str] = []
    pos = 0
    for offset in sorted(inserts):
        out.append(source[pos:offset])
        out.append(inserts[offset])
        pos = offset
    out.append(source[pos:])
    body = "".join(out)
    upvalues = f"{budget}, {entry}" + (f", {extra}" if extra else "")
    return (
        f"local {upvalues} = ...; return function(...) local {counter} = 0;{check}{body}\nend",
        f"local {counter}, {upvalues} = 0, ...; return function(...) {check}{body}\nend",
    )


# Keywords that can stand in a function's leading statements without calling anything.
_SAFE_KEYWORDS = frozenset(
    {"if", "then", "elseif", "else", "end", "return", "local", "not", "and", "or",
     "nil", "true", "false"}
)  # fmt: skip
_COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "~="})
_LITERALS = frozenset({"number", "string", "long"})


def _ends_expression(token: tuple) -> bool:
    """Whether a "(", "{" or string after `token` would be a call (and a name
    after it starts a new statement)."""
    kind, text = token[0], token[1]
    if kind in _LITERALS:
        return True
    if kind == "name":
        return text not in _KEYWORDS or text in ("end", "nil", "true", "false")
    return text in (")", "]", "}", "...")


def _call_check_position(tokens: list[tuple], at: int) -> int | None:
    """For the `function` keyword at tokens[at]: the index of the token
    before which its body's call check goes (the first statement that may
    call anything), or None when the body calls nothing at all.

    Only a few statement forms count as calling nothing: `if`, `local`,
    assignments to locals and `return`, made of the function's parameters
    and locals, literals, `not`/`and`/`or`, parentheses, and comparisons
    with a literal (Lua calls no metamethod to compare a number or a string
    with anything else). Anything more is taken as a possible call: the
    check comes before it, so this errs on the side of a check."""
    i = at + 1
    method = False
    while i < len(tokens) and tokens[i][1] != "(":
        method = method or tokens[i][1] == ":"
        i += 1
    known = {"self"} if method else set()
    i += 1
    while i < len(tokens) and tokens[i][1] != ")":
        if tokens[i][0] == "name":
            known.add(tokens[i][1])
        i += 1
    i += 1  # the body
    statement = i
    depth = 0  # of `if` blocks
    declared: list[str] = []  # by the current `local` statement, visible after it
    while i < len(tokens):
        kind, text = tokens[i][0], tokens[i][1]
        after_expression = _ends_expression(tokens[i - 1])
        starts = text in ("if", "local", "return", ";") or (
            kind == "name" and text not in _KEYWORDS and after_expression
        )
        if depth == 0 and starts:
            statement = i
            known.update(declared)
            declared = []
        if kind == "name" and text in _SAFE_KEYWORDS:
            if text == "if":
                depth += 1
            elif text == "end" and depth == 0:
                return None  # the body ended without calling anything
            elif text == "end":
                depth -= 1
            elif text == "local":
                if depth > 0:
                    return statement  # a block's own locals: not followed here
                i += 1
                while i < len(tokens) and (tokens[i][0] == "name" or tokens[i][1] == ","):
                    if tokens[i][1] in _KEYWORDS:
                        return statement  # local function
                    if tokens[i][0] == "name":
                        declared.append(tokens[i][1])
                    i += 1
                continue
        elif kind == "name":
            if text not in known or after_expression:
                return statement
        elif kind in _LITERALS or text == "(":
            if after_expression:
                return statement  # f"x", f(x)
        elif text in _COMPARISONS:
            if not (_is_literal(tokens, i - 1) or _is_literal(tokens, i + 1)):
                return statement
        elif text not in (")", "=", ",", ";", "...") and not _is_literal(tokens, i):
            return statement
        i += 1
    return None


def _is_literal(tokens: list[tuple], i: int) -> bool:
    if not 0 <= i < len(tokens):
        return False
    kind, text = tokens[i][0], tokens[i][1]
    if kind in _LITERALS or text in ("nil", "true", "false"):
        return True
    # A negative number: a "-" that is no binary minus, then a number.
    return (
        text == "-"
        and i + 1 < len(tokens)
        and tokens[i + 1][0] == "number"
        and not (i > 0 and _ends_expression(tokens[i - 1]))
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
