"""Line checks written into the script of a debug run.

A debug run must stop at a breakpoint, step line by line and pause on
demand, and a paused run must hold no Lua thread: it yields to the driver
like a waiting device call. A debug hook cannot do that (a hook function
cannot yield, and LuaJIT's compiled code never calls hooks), so the source
of a debug run is rewritten instead: before the first statement that starts
on each line goes

    if B[<line>] then D(<line>) end

(and before the first statement of a loop's body, when it is on the
loop's line), where B and D are upvalues with unguessable names (see
runtime.py): the lines the debugger armed (those with a breakpoint, or all
while stepping) and its line function. A line that is not armed costs a
table lookup and a branch, in Lua 5.1's interpreter as in LuaJIT's compiled
code; D is an ordinary Lua call, so it can yield wherever a waiting binding
can. Only debug runs are rewritten: a normal run pays nothing.

The insertion never adds a line, so line numbers stay right. Only
syntactically valid source is rewritten (the engine compiles the original
first).
"""

from __future__ import annotations

from oktoscripts.lua.instrument import _KEYWORDS, _TOKEN, _ends_expression

# Keywords that begin a statement.
_STATEMENT_KEYWORDS = frozenset(
    {"local", "if", "for", "while", "repeat", "return", "break", "goto", "do", "function"}
)
# A loop body's first statement gets its check even on the line of the
# loop's start, so that a loop written on one line can still be paused (like
# a line hook, which fires again on each jump back to the same line). An
# `if`'s block on its line gets none: it would hit a breakpoint twice.
_BLOCK_OPENERS = frozenset({"do", "repeat"})
# Tokens after which a new statement begins (beside those ending an expression).
_BEFORE_STATEMENT = frozenset({"then", "do", "else", "repeat", ";", "break"})


def line_checks(source: str, armed: str, check: str) -> str:
    """`source` with ``if armed[<line>] then check(<line>) end`` before the
    first statement of each line and of each loop body (``while x do
    <check> ... end`` on one line)."""
    tokens = [
        (m.lastgroup, m.group(), m.start())
        for m in _TOKEN.finditer(source)
        if m.lastgroup not in ("space", "comment")
    ]
    out: list[str] = []
    pos = 0
    line = 1
    counted = 0  # offset up to which newlines are counted into `line`
    done_line = 0  # the last line that got its check
    previous: tuple | None = None
    for token in tokens:
        kind, text, start = token
        line += source.count("\n", counted, start)
        counted = start
        opens_block = previous is not None and previous[1] in _BLOCK_OPENERS
        if (line != done_line or opens_block) and _starts_statement(previous, kind, text):
            out.append(source[pos:start])
            out.append(f"if {armed}[{line}] then {check}({line}) end ")
            pos = start
            done_line = line
        # A multi-line token (string, long bracket) moves the line on.
        previous = token
    out.append(source[pos:])
    return "".join(out)


def _starts_statement(previous: tuple | None, kind: str, text: str) -> bool:
    if kind != "name":
        return False  # "(", "::" and the rest: no check (rare at a line's start)
    if text in _KEYWORDS and text not in _STATEMENT_KEYWORDS:
        return False
    if previous is None:
        return True
    prev_text = previous[1]
    if previous[0] == "name" and prev_text in _BEFORE_STATEMENT:
        return True
    if previous[0] == "symbol" and prev_text == ";":
        return True
    # After an expression's last token (a name, a literal, ")" of a call or
    # of a parameter list, "end"...) a name always begins a new statement.
    return _ends_expression(previous)
