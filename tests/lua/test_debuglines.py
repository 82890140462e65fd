"""The line checks of debug runs: written where a statement begins, never
changing what the script does or its line numbers."""

from __future__ import annotations

import pytest

from oktoscripts.lua.debugger import DebugSession
from oktoscripts.lua.debuglines import line_checks
from oktoscripts.lua.limits import Limits
from oktoscripts.lua.run import LuaRun

TRICKY = [
    # statements across lines, calls, method calls, long strings and comments
    """local t = {
  a = 1, b = "x",
  c = { 1, 2,
    3 },
}
local s = [[
line ]] .. #t.c
--[[ a comment
with lines ]] local n = 0
for i = 1, 3 do n = n + i end
while n > 100 do n = n - 1 end
repeat n = n + 1 until n > 10
if n > 5 then n = n * 2 else n = 0 end
local o = { v = 2 }
function o:get() return self.v end
local f = function(x)
  return x
    + 1
end
goto skip
n = -1
::skip::
return { n, s, o:get(), f(1), ("%d"):format(5) }
""",
    # a function call statement on the line after an expression
    """local x = 1
local y = x
print(y)
local z = (function() return 3 end)()
return x + y + z
""",
    # an error's line number is the script's own
    """local a = 1

error("at line three")
""",
]


@pytest.mark.parametrize("runtime", ["luajit", "lua51"])
@pytest.mark.parametrize("source", TRICKY)
async def test_a_debug_run_does_what_a_normal_run_does(lua_pool, runtime, source):
    normal = await LuaRun(
        source, runtime=runtime, executor=lua_pool, limits=Limits(wall_seconds=10)
    ).run()
    session = DebugSession()
    session.configure([])
    debug = await LuaRun(
        source, runtime=runtime, executor=lua_pool, debug=session, limits=Limits(wall_seconds=10)
    ).run()
    assert (debug.status, debug.result) == (normal.status, normal.result)
    assert (debug.error and debug.error.message) == (normal.error and normal.error.message)


def test_checks_go_before_statements_only():
    out = line_checks("local t = {\n  a = 1,\n}\nprint(t)\nx = f(\n  2)\n", "B", "D")
    assert out == (
        "if B[1] then D(1) end local t = {\n  a = 1,\n}\n"
        "if B[4] then D(4) end print(t)\n"
        "if B[5] then D(5) end x = f(\n  2)\n"
    )
    one_line = line_checks("while true do x = 1 end", "B", "D")
    assert one_line == "if B[1] then D(1) end while true do if B[1] then D(1) end x = 1 end"
    assert line_checks("if a then b() end", "B", "D") == "if B[1] then D(1) end if a then b() end"
