"""A lint for Lua 5.1 scripts, run as the user types in the editor.

It parses the script (a small recursive-descent parser that tracks scopes,
nothing more) and reports what usually is a mistake in an automation script:

- a global that is read but never defined: most often a typo of an API name
  ("get_devce" -> did you mean "get_device"?);
- a call to an API function with too few or too many arguments;
- a name the sandbox removes (``io``, ``require``, ``os.execute``...);
- a local variable or local function that is never used.

It only runs on a script that compiles (the syntax check comes first), and it
never raises on bad input: an unexpected token ends the analysis quietly.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from oktoscripts.lua.binding import all_bindings

# What a script may use besides the API bindings (the sandbox of docs/lua-api.md).
SAFE_GLOBALS = frozenset(
    "assert error ipairs next pairs pcall print rawequal rawget rawset select "
    "setmetatable getmetatable tonumber tostring type unpack xpcall _G _VERSION "
    "string table math coroutine os debug args collectgarbage setfenv getfenv "
    "load loadstring newproxy gcinfo".split()
)
REMOVED_GLOBALS = frozenset("io require package module dofile loadfile".split())
LIBRARY_FIELDS = {
    "string": set(
        "byte char find format gmatch gsub len lower match rep reverse sub upper".split()
    ),
    "table": set("concat insert maxn remove sort getn setn foreach foreachi".split()),
    "math": set(
        "abs acos asin atan atan2 ceil cos cosh deg exp floor fmod frexp huge ldexp log "
        "log10 max min mod modf pi pow rad random randomseed sin sinh sqrt tan tanh".split()
    ),
    "coroutine": set("create resume running status wrap yield".split()),
    "os": set("time clock date difftime".split()),
    "debug": {"traceback"},
}
REMOVED_FIELDS = {
    "os": set("execute remove rename exit getenv tmpname setlocale".split()),
    "string": {"dump"},
    "debug": set(
        "debug getfenv gethook getinfo getlocal getmetatable getregistry getupvalue "
        "setfenv sethook setlocal setmetatable setupvalue".split()
    ),
}

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\r\f\v]+)
  | (?P<nl>\n)
  | (?P<lcomment>--\[(?P<ceq>=*)\[)
  | (?P<comment>--[^\n]*)
  | (?P<lstring>\[(?P<seq>=*)\[)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\\n]|\\.|\\\n)*"|'(?:[^'\\\n]|\\.|\\\n)*')
  | (?P<op>\.\.\.|\.\.|==|~=|<=|>=|[-+*/%^\#<>=(){}\[\];:,.])
    """,
    re.VERBOSE | re.DOTALL,
)
KEYWORDS = frozenset(
    "and break do else elseif end false for function if in local nil not or repeat "
    "return then true until while".split()
)
BINARY_OPS = frozenset("+ - * / % ^ .. == ~= < <= > >= and or".split())
BLOCK_END = frozenset(("end", "else", "elseif", "until", "<eof>"))


@dataclass
class Token:
    kind: str  # "name" | "keyword" | "number" | "string" | "op" | "eof"
    value: str
    line: int
    col: int  # 0-based


@dataclass
class Problem:
    line: int
    column: int  # 0-based
    end_column: int
    message: str
    severity: str  # "error" | "warning"
    code: str  # "unknown-global" | "arg-count" | "sandbox" | "unused-local" | "unknown-field"

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "column": self.column,
            "end_column": self.end_column,
            "message": self.message,
            "severity": self.severity,
            "code": self.code,
        }


class _Stop(Exception):
    """The parser met something it does not understand: stop linting."""


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    pos, line, line_start = 0, 1, 0
    n = len(source)
    if source.startswith("#"):  # shebang line
        pos = source.find("\n") if "\n" in source else n
    while pos < n:
        m = _TOKEN_RE.match(source, pos)
        if m is None:
            raise _Stop
        kind = m.lastgroup
        text = m.group(0)
        col = pos - line_start
        if kind in ("lcomment", "lstring"):
            eq = m.group("ceq") if kind == "lcomment" else m.group("seq")
            close = source.find("]" + eq + "]", m.end())
            if close < 0:
                raise _Stop
            end = close + len(eq) + 2
            body = source[pos:end]
            if kind == "lstring":
                tokens.append(Token("string", body, line, col))
            newlines = body.count("\n")
            if newlines:
                line += newlines
                line_start = pos + body.rfind("\n") + 1
            pos = end
            continue
        if kind == "nl":
            line += 1
            line_start = m.end()
        elif kind == "name":
            tokens.append(Token("keyword" if text in KEYWORDS else "name", text, line, col))
        elif kind in ("number", "string", "op"):
            tokens.append(Token(kind, text, line, col))
            if kind == "string" and "\n" in text:
                line += text.count("\n")
                line_start = pos + text.rfind("\n") + 1
        pos = m.end()
    tokens.append(Token("eof", "<eof>", line, pos - line_start))
    return tokens


@dataclass
class _Local:
    token: Token
    kind: str  # "local" | "function" | "param" | "loop"
    used: bool = False


@dataclass
class _Expr:
    multi: bool = False  # a call or "...": may give several values
    name: Token | None = None  # a bare, unresolved global name (assignment target)


@dataclass
class _Analysis:
    global_reads: list[Token] = field(default_factory=list)
    global_writes: set[str] = field(default_factory=set)
    calls: list[tuple[Token, int, bool]] = field(default_factory=list)  # name, nargs, open
    fields: list[tuple[Token, Token]] = field(default_factory=list)  # lib global, field
    unused: list[_Local] = field(default_factory=list)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0
        self.scopes: list[dict[str, _Local]] = []
        self.out = _Analysis()

    # -- tokens
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, value: str) -> bool:
        t = self.tok
        return t.value == value and t.kind in ("op", "keyword", "eof")

    def next(self) -> Token:
        t = self.tokens[self.i]
        if t.kind != "eof":
            self.i += 1
        return t

    def expect(self, value: str) -> Token:
        if not self.peek(value):
            raise _Stop
        return self.next()

    def accept(self, value: str) -> bool:
        if self.peek(value):
            self.next()
            return True
        return False

    def name(self) -> Token:
        if self.tok.kind != "name":
            raise _Stop
        return self.next()

    # -- scopes
    def open_scope(self) -> None:
        self.scopes.append({})

    def close_scope(self) -> None:
        for local in self.scopes.pop().values():
            if not local.used and local.kind in ("local", "function"):
                if not local.token.value.startswith("_"):
                    self.out.unused.append(local)

    def declare(self, token: Token, kind: str) -> None:
        scope = self.scopes[-1]
        previous = scope.get(token.value)
        if previous is not None and not previous.used and previous.kind in ("local", "function"):
            if not token.value.startswith("_"):
                self.out.unused.append(previous)
        scope[token.value] = _Local(token, kind)

    def resolve(self, token: Token) -> _Local | None:
        for scope in reversed(self.scopes):
            if token.value in scope:
                return scope[token.value]
        return None

    def read(self, token: Token) -> None:
        local = self.resolve(token)
        if local is not None:
            local.used = True
        else:
            self.out.global_reads.append(token)

    def write(self, token: Token) -> None:
        if self.resolve(token) is None:
            self.out.global_writes.add(token.value)

    # -- grammar
    def chunk(self) -> _Analysis:
        self.open_scope()
        self.block()
        if self.tok.kind != "eof":
            raise _Stop
        self.close_scope()
        return self.out

    def block(self) -> None:
        while self.tok.value not in BLOCK_END or self.tok.kind in ("name", "string"):
            if self.peek("return"):
                self.next()
                if not (self.tok.value in BLOCK_END or self.peek(";")):
                    self.explist()
                self.accept(";")
                return
            self.statement()

    def scoped_block(self, declare: Iterable[tuple[Token, str]] = ()) -> None:
        self.open_scope()
        for token, kind in declare:
            self.declare(token, kind)
        self.block()
        self.close_scope()

    def statement(self) -> None:
        t = self.tok
        v = t.value if t.kind in ("keyword", "op") else None
        if v == ";":
            self.next()
        elif v == "if":
            self.next()
            self.expr()
            self.expect("then")
            self.scoped_block()
            while self.peek("elseif"):
                self.next()
                self.expr()
                self.expect("then")
                self.scoped_block()
            if self.accept("else"):
                self.scoped_block()
            self.expect("end")
        elif v == "while":
            self.next()
            self.expr()
            self.expect("do")
            self.scoped_block()
            self.expect("end")
        elif v == "do":
            self.next()
            self.scoped_block()
            self.expect("end")
        elif v == "for":
            self.for_statement()
        elif v == "repeat":
            self.next()
            self.open_scope()
            self.block()
            self.expect("until")
            self.expr()
            self.close_scope()
        elif v == "function":
            self.function_statement()
        elif v == "local":
            self.next()
            if self.accept("function"):
                name = self.name()
                self.declare(name, "function")
                self.function_body()
            else:
                names = [self.name()]
                while self.accept(","):
                    names.append(self.name())
                if self.accept("="):
                    self.explist()
                for name in names:
                    self.declare(name, "local")
        elif v == "break":
            self.next()
        else:
            self.expression_statement()

    def for_statement(self) -> None:
        self.expect("for")
        first = self.name()
        if self.accept("="):
            self.expr()
            self.expect(",")
            self.expr()
            if self.accept(","):
                self.expr()
            names = [first]
        else:
            names = [first]
            while self.accept(","):
                names.append(self.name())
            self.expect("in")
            self.explist()
        self.expect("do")
        self.scoped_block((n, "loop") for n in names)
        self.expect("end")

    def function_statement(self) -> None:
        self.expect("function")
        base = self.name()
        method = False
        if self.peek(".") or self.peek(":"):
            self.read(base)
            while self.accept("."):
                self.name()
            if self.accept(":"):
                self.name()
                method = True
        else:
            self.write(base)
        self.function_body(method)

    def function_body(self, method: bool = False) -> None:
        self.expect("(")
        params: list[tuple[Token, str]] = []
        if method:
            params.append((Token("name", "self", self.tok.line, self.tok.col), "param"))
        if not self.peek(")"):
            while True:
                if self.accept("..."):
                    break
                params.append((self.name(), "param"))
                if not self.accept(","):
                    break
        self.expect(")")
        self.scoped_block(params)
        self.expect("end")

    def expression_statement(self) -> None:
        first = self.suffixed(statement=True)
        if self.peek("=") or self.peek(","):
            targets = [first]
            while self.accept(","):
                targets.append(self.suffixed(statement=True))
            self.expect("=")
            self.explist()
            for target in targets:
                if target.name is not None:
                    self.write(target.name)
        elif first.name is not None:
            raise _Stop  # a bare name is no statement

    def explist(self) -> tuple[int, bool]:
        count, last = 1, self.expr()
        while self.accept(","):
            count += 1
            last = self.expr()
        return count, last.multi

    def expr(self) -> _Expr:
        if self.peek("not") or self.peek("-") or self.peek("#"):
            self.next()
            self.expr_operand()
            result = _Expr()
        else:
            result = self.expr_operand()
        while (self.tok.kind in ("op", "keyword")) and self.tok.value in BINARY_OPS:
            self.next()
            if self.peek("not") or self.peek("-") or self.peek("#"):
                self.next()
            self.expr_operand()
            result = _Expr()
        return result

    def expr_operand(self) -> _Expr:
        t = self.tok
        if t.kind in ("number", "string"):
            self.next()
            return _Expr()
        if t.kind == "keyword" and t.value in ("nil", "true", "false"):
            self.next()
            return _Expr()
        if self.peek("..."):
            self.next()
            return _Expr(multi=True)
        if self.peek("function"):
            self.next()
            self.function_body()
            return _Expr()
        if self.peek("{"):
            self.table()
            return _Expr()
        if self.peek("not") or self.peek("-") or self.peek("#"):
            self.next()
            self.expr_operand()
            return _Expr()
        expr = self.suffixed(statement=False)
        return expr

    def table(self) -> None:
        self.expect("{")
        while not self.peek("}"):
            if self.peek("["):
                self.next()
                self.expr()
                self.expect("]")
                self.expect("=")
                self.expr()
            elif (
                self.tok.kind == "name"
                and self.tokens[self.i + 1].value == "="
                and (self.tokens[self.i + 1].kind == "op")
            ):
                self.next()
                self.next()
                self.expr()
            else:
                self.expr()
            if not (self.accept(",") or self.accept(";")):
                break
        self.expect("}")

    def suffixed(self, statement: bool) -> _Expr:
        """primaryexp { .Name | [exp] | :Name args | args }"""
        base: Token | None = None
        if self.accept("("):
            self.expr()
            self.expect(")")
        else:
            base = self.name()
        if base is not None and statement and not self._has_suffix():
            return _Expr(name=base)  # the caller decides: assignment target or error
        global_base = base is not None and self.resolve(base) is None
        if base is not None:
            self.read(base)
        multi = False
        first = True
        while True:
            if self.peek("."):
                self.next()
                member = self.name()
                if first and global_base and base is not None:
                    self.out.fields.append((base, member))
                multi = False
            elif self.peek("["):
                self.next()
                self.expr()
                self.expect("]")
                multi = False
            elif self.peek(":"):
                self.next()
                self.name()
                self.call_args()
                multi = True
            elif self.peek("(") or self.peek("{") or self.tok.kind == "string":
                nargs, open_ended = self.call_args()
                if first and global_base and base is not None:
                    self.out.calls.append((base, nargs, open_ended))
                multi = True
            else:
                return _Expr(multi=multi)
            first = False

    def _has_suffix(self) -> bool:
        return (
            self.peek(".")
            or self.peek("[")
            or self.peek(":")
            or self.peek("(")
            or (self.peek("{") or self.tok.kind == "string")
        )

    def call_args(self) -> tuple[int, bool]:
        if self.tok.kind == "string":
            self.next()
            return 1, False
        if self.peek("{"):
            self.table()
            return 1, False
        self.expect("(")
        if self.accept(")"):
            return 0, False
        count, open_ended = self.explist()
        self.expect(")")
        return count, open_ended


def _binding_arity(binding: Any) -> tuple[int, int] | None:
    if getattr(binding, "normalize", None) is not None:
        return None  # alternative call forms: the runtime check decides
    params = binding.params
    required = sum(1 for p in params if not p.optional)
    return required, len(params)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def lint(source: str, bindings: Iterable[Any] | None = None) -> list[dict[str, Any]]:
    """Problems found in ``source`` (an empty list when it does not parse).

    ``bindings`` are the registry's Binding objects (default: those registered,
    which are all of them once ``oktoscripts.bindings`` is imported).
    """
    if bindings is None:
        bindings = all_bindings()
    api = {b.name: b for b in bindings}
    try:
        analysis = _Parser(tokenize(source)).chunk()
    except (_Stop, IndexError, RecursionError):
        return []
    problems: list[Problem] = []
    known = SAFE_GLOBALS | set(api) | analysis.global_writes
    for token in analysis.global_reads:
        name = token.value
        end = token.col + len(name)
        if name in REMOVED_GLOBALS:
            problems.append(
                Problem(
                    token.line,
                    token.col,
                    end,
                    f"'{name}' is not available in the sandbox",
                    "error",
                    "sandbox",
                )
            )
        elif name not in known:
            guess = difflib.get_close_matches(name, sorted(SAFE_GLOBALS | set(api)), 1, 0.75)
            hint = f" (did you mean '{guess[0]}'?)" if guess else ""
            problems.append(
                Problem(
                    token.line,
                    token.col,
                    end,
                    f"unknown global '{name}'{hint}",
                    "warning",
                    "unknown-global",
                )
            )
    for base, member in analysis.fields:
        lib = base.value
        if lib in analysis.global_writes or lib not in LIBRARY_FIELDS:
            continue
        end = member.col + len(member.value)
        if member.value in REMOVED_FIELDS.get(lib, ()):
            problems.append(
                Problem(
                    member.line,
                    base.col,
                    end,
                    f"'{lib}.{member.value}' is not available in the sandbox",
                    "error",
                    "sandbox",
                )
            )
        elif member.value not in LIBRARY_FIELDS[lib]:
            guess = difflib.get_close_matches(member.value, sorted(LIBRARY_FIELDS[lib]), 1, 0.7)
            hint = f" (did you mean '{lib}.{guess[0]}'?)" if guess else ""
            problems.append(
                Problem(
                    member.line,
                    member.col,
                    end,
                    f"unknown field '{lib}.{member.value}'{hint}",
                    "warning",
                    "unknown-field",
                )
            )
    for token, nargs, open_ended in analysis.calls:
        binding = api.get(token.value)
        if binding is None or token.value in analysis.global_writes:
            continue
        arity = _binding_arity(binding)
        if arity is None:
            continue
        low, high = arity
        given = nargs - 1 if open_ended else nargs
        if given > high:
            message = f"{token.value} takes at most {_plural(high, 'argument')}, got {nargs}"
        elif given < low and not open_ended:
            message = f"{token.value} needs {_plural(low, 'argument')}, got {nargs}"
        else:
            continue
        problems.append(
            Problem(
                token.line, token.col, token.col + len(token.value), message, "warning", "arg-count"
            )
        )
    for local in analysis.unused:
        what = "local function" if local.kind == "function" else "local"
        t = local.token
        problems.append(
            Problem(
                t.line,
                t.col,
                t.col + len(t.value),
                f"unused {what} '{t.value}'",
                "warning",
                "unused-local",
            )
        )
    problems.sort(key=lambda p: (p.line, p.column))
    return [p.as_dict() for p in problems]
