"""Debug information stripped from the engine's own Lua 5.1 bytecode.

Every run loads the engine chunk (sandbox.lua) into a fresh runtime, and in
Lua 5.1 about half of a loaded function prototype is debug information: a
line number per instruction, local variable and upvalue names. The engine
needs none of it (its frames are never shown; its errors are placed at the
script's line), so it is dropped once per process, like `luac -s` does, which
makes every runtime smaller and quicker to load. The chunk name of the main
function is kept: the engine tells its own frames from the script's by it.

(LuaJIT strips with `string.dump(f, true)`; scripts never load bytecode.)

Layout (Lua 5.1, lundump.c): a 12-byte header, then the main function:
source (size_t length, bytes), linedefined, lastlinedefined (int), nups,
numparams, is_vararg, maxstacksize (byte), code (int n, n instructions),
constants (int n, each a type byte and value; int n, nested functions),
then the debug part: line info (int n, n ints), local variables (int n, each
a string and two ints), upvalue names (int n, n strings).
"""

from __future__ import annotations

import struct

_HEADER = b"\x1bLua\x51\x00"
_NIL, _BOOLEAN, _NUMBER, _STRING = 0, 1, 3, 4


class _Reader:
    def __init__(self, data: bytes) -> None:
        header = data[:12]
        if header[:6] != _HEADER:
            raise ValueError("not Lua 5.1 bytecode")
        endian = "<" if header[6] == 1 else ">"
        self.int_size, self.size_t_size = header[7], header[8]
        self.number_size = header[10]
        self.int_format = endian + {4: "i", 8: "q"}[self.int_size]
        self.size_t_format = endian + {4: "I", 8: "Q"}[self.size_t_size]
        self.data = data
        self.pos = 12

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        if len(chunk) != n:
            raise ValueError("truncated Lua bytecode")
        self.pos += n
        return chunk

    def int(self) -> int:
        return struct.unpack(self.int_format, self.take(self.int_size))[0]

    def string(self) -> bytes:
        raw = self.take(self.size_t_size)
        size = struct.unpack(self.size_t_format, raw)[0]
        return raw + self.take(size)


def strip_lua51(dump: bytes) -> bytes:
    """`dump` (from string.dump under Lua 5.1) without its debug information."""
    reader = _Reader(dump)
    out = [dump[:12]]
    _function(reader, out)
    if reader.pos != len(dump):
        raise ValueError("unexpected data after the Lua bytecode")
    return b"".join(out)


def _function(r: _Reader, out: list[bytes]) -> None:
    zero = struct.pack(r.int_format, 0)
    out.append(r.string())  # source: the main function's, NULL (inherited) below
    out.append(r.take(2 * r.int_size + 4))  # line range, nups, params, vararg, stack
    code_size = r.int()
    out.append(struct.pack(r.int_format, code_size) + r.take(4 * code_size))
    constants = r.int()
    out.append(struct.pack(r.int_format, constants))
    for _ in range(constants):
        kind = r.take(1)
        out.append(kind)
        if kind[0] == _BOOLEAN:
            out.append(r.take(1))
        elif kind[0] == _NUMBER:
            out.append(r.take(r.number_size))
        elif kind[0] == _STRING:
            out.append(r.string())
        elif kind[0] != _NIL:
            raise ValueError(f"unknown constant type {kind[0]} in Lua bytecode")
    functions = r.int()
    out.append(struct.pack(r.int_format, functions))
    for _ in range(functions):
        _function(r, out)
    # Debug part: read past it, write it empty.
    r.take(r.int() * r.int_size)
    for _ in range(r.int()):
        r.string()
        r.take(2 * r.int_size)
    for _ in range(r.int()):
        r.string()
    out.append(zero * 3)
