"""The LuaJIT budget checks: inserted in code only, never in strings or
comments, lines kept, behaviour unchanged."""

from __future__ import annotations

import lupa.luajit21 as luajit

from oktoscripts.lua.instrument import instrument

TRICKY = r"""
local s = "while true do end -- not code"
local t = 'repeat \' do'
--[[ do repeat
  goto x ]]
--[==[ ]] do ]==]
local long = [[
do
]] .. [=[ repeat ]=]
local n = 0
for i = 1, 3 do n = n + i end   -- do
local k = 0
repeat k = k + 1 until k >= 2
local function f(a) if a > 0 then return f(a - 1) end return a end
return s, t, long, n, k, f(3), debug_line()
"""


def test_checks_go_into_code_only():
    out = instrument(TRICKY, "C", "X", "K")
    check = "C=C-1 if C<0 then C=X() end;"
    body = out.split("\n")
    assert out.count(check) == 4  # chunk start, for ... do, repeat, the tail call
    assert body[1] == 'local s = "while true do end -- not code"'
    assert body[2] == "local t = 'repeat \\' do'"
    assert body[6] == "local long = [["
    assert body[7] == "do"
    assert check in body[10] and check in body[12] and check in body[13]
    assert len(body) == len(TRICKY.split("\n")) + 1  # only the closing "end" line is added


def test_instrumented_code_behaves_the_same():
    lua = luajit.LuaRuntime()
    lua.execute("function debug_line() return debug.getinfo(2, 'l').currentline end")
    loadstring = lua.eval("loadstring")
    plain = loadstring(TRICKY)()
    calls = []

    def budget():
        calls.append(1)
        return 2

    main = loadstring(instrument(TRICKY, "C", "X", "K"))(budget, lambda: None)
    assert main() == plain
    assert plain[-1] == 15  # debug_line() reports the script's own line
    assert calls  # the budget function was reached
