"""The sandbox of docs/lua-api.md: what is removed, what stays, and no way to Python."""

from __future__ import annotations

import pytest

RUNTIMES = ["lua51", "luajit"]

REMOVED = [
    "io",
    "os.execute",
    "os.remove",
    "os.rename",
    "os.exit",
    "os.getenv",
    "os.tmpname",
    "os.setlocale",
    "require",
    "package",
    "module",
    "dofile",
    "loadfile",
    "string.dump",
    "debug.getinfo",
    "debug.sethook",
    "debug.getregistry",
    "debug.getupvalue",
    "debug.setupvalue",
    "debug.getlocal",
    "debug.setmetatable",
    "debug.getmetatable",
    "python",
    "jit",
]

AVAILABLE = [
    "assert", "error", "ipairs", "next", "pairs", "pcall", "xpcall", "print", "rawequal",
    "rawget", "rawset", "select", "tonumber", "tostring", "type", "unpack", "getmetatable",
    "setmetatable", "loadstring", "load", "setfenv", "getfenv", "collectgarbage",
    "string.format", "string.find", "string.gsub", "string.rep", "table.insert",
    "table.concat", "table.sort", "math.floor", "math.random", "coroutine.create",
    "coroutine.resume", "coroutine.wrap", "coroutine.yield", "coroutine.status",
    "coroutine.running", "os.time", "os.clock", "os.date", "os.difftime", "debug.traceback",
]  # fmt: skip


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_removed_names_are_nil(run_lua, runtime):
    checks = ", ".join(f'["{name}"] = ({name}) == nil' for name in REMOVED)
    outcome, _, _ = await run_lua(f"return {{{checks}}}", runtime=runtime)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == {name: True for name in REMOVED}


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_available_names_are_functions(run_lua, runtime):
    checks = ", ".join(f'["{name}"] = type({name})' for name in AVAILABLE)
    outcome, _, _ = await run_lua(f"return {{{checks}}}", runtime=runtime)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == {name: "function" for name in AVAILABLE}


@pytest.mark.parametrize(
    "source",
    [
        "return python.eval('1')",
        "return python.builtins.open",
        "return python.none",
        "return sleep.__class__",
        "return get_device.__globals__",
        "return print.__self__",
        "return (json_decode('{}')).__class__.__bases__",
    ],
)
async def test_no_way_into_python(run_lua, source):
    outcome, _, _ = await run_lua(source)
    # Either an error (indexing nil or a function) or nil: never a Python object.
    if outcome.status == "succeeded":
        assert outcome.result is None
    else:
        assert outcome.status == "failed"
        assert "attempt to index" in outcome.error.message


async def test_bindings_are_plain_lua_functions(run_lua):
    outcome, _, _ = await run_lua(
        """
        local d = json_decode('{"a": [1, 2]}')
        return {
          type(sleep), getmetatable(sleep), getmetatable(json_decode),
          type(d), getmetatable(d), getmetatable(d.a),
          pcall(string.dump, sleep),
        }
        """
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == {
        "1": "function",
        "4": "table",
        "7": False,
        "8": "attempt to call a nil value",
    }


async def test_host_functions_have_no_upvalues_or_env_to_reach(run_lua):
    outcome, _, _ = await run_lua(
        """
        local env = getfenv(sleep)
        return env == _G, rawget(env, "python"), getfenv(0) == _G, getfenv(print) == _G,
               getfenv(string.find) == _G
        """
    )
    assert outcome.result == [True, None, True, True, True]


async def test_setfenv_only_on_script_functions(run_lua):
    outcome, _, _ = await run_lua(
        """
        local function f() return x end
        setfenv(f, {x = 42})
        local ok1 = pcall(setfenv, print, {})
        local ok2 = pcall(setfenv, sleep, {})
        local ok3 = pcall(setfenv, 0, {})
        return f(), ok1, ok2, ok3
        """
    )
    assert outcome.result == [42, False, False, False]


async def test_collectgarbage_only_count(run_lua):
    outcome, _, _ = await run_lua(
        """
        local n = collectgarbage("count")
        local ok, err = pcall(collectgarbage, "collect")
        local ok2 = pcall(collectgarbage)
        return type(n), ok, err, ok2
        """
    )
    assert outcome.result[0] == "number"
    assert outcome.result[1] is False
    assert 'only collectgarbage("count")' in outcome.result[2]
    assert outcome.result[3] is False


# Loaded into a runtime only when a script first calls one of them (see
# sandbox_more.lua): their errors still name the script's line, and levels
# still count from the caller, as in Lua.
LAZY_ERRORS = [
    ("coroutine.create(42)", "script:2: bad argument #1 to 'create' (Lua function expected)"),
    ("coroutine.resume(42)", "script:2: bad argument #1 to 'resume' (coroutine expected)"),
    ("coroutine.status(42)", "script:2: bad argument #1 to 'status' (coroutine expected)"),
    ("coroutine.yield(1)", "script:2: attempt to yield from outside a coroutine"),
    ("setfenv(1, 5)", "script:2: bad argument #2 to 'setfenv' (table expected, got number)"),
    ("setfenv(print, {})", "script:2: 'setfenv' cannot change the environment of this function"),
    ("getfenv(-1)", "script:2: bad argument #1 to 'getfenv' (level must be non-negative)"),
    ("getfenv(50)", "script:2: bad argument #1 to 'getfenv' (invalid level)"),
    ("loadstring({})", "script:2: bad argument #1 to 'loadstring' (string expected, got table)"),
    ("load(5)", "script:2: bad argument #1 to 'load' (function expected, got number)"),
    (
        "collectgarbage('step')",
        'script:2: collectgarbage: only collectgarbage("count") is available to scripts',
    ),
]


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(("call", "message"), LAZY_ERRORS)
async def test_rarely_used_functions_report_the_callers_line(run_lua, runtime, call, message):
    source = f"local ok, err = pcall(function()\n  {call}\nend)\nreturn err"
    outcome, _, _ = await run_lua(source, runtime=runtime)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == message


# Lua functions of the engine's around C ones (see sandbox_more.lua, "newproxy
# and finalizers"): their argument errors name the caller's line too.
@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("getmetatable()", "script:2: bad argument #1 to 'getmetatable' (value expected)"),
        ("newproxy(5)", "script:2: bad argument #1 to 'newproxy' (boolean or proxy expected)"),
    ],
)
async def test_proxy_functions_report_the_callers_line(run_lua, runtime, call, message):
    source = f"local ok, err = pcall(function()\n  {call}\nend)\nreturn err"
    outcome, _, _ = await run_lua(source, runtime=runtime)
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == message


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_levels_of_getfenv_and_setfenv_count_from_the_caller(run_lua, runtime):
    outcome, _, _ = await run_lua(
        """
        local function inner() return getfenv(1), getfenv(2) end
        local function outer()
          setfenv(1, setmetatable({tag = "outer"}, {__index = _G}))
          local a, b = inner()
          return a == _G, b.tag
        end
        local t = {x = 7}
        local function f() return x end
        setfenv(f, t)
        return {outer()}, f(), getfenv(f) == t
        """,
        runtime=runtime,
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == [[True, "outer"], 7, True]


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_coroutine_wrap_does_not_use_the_scripts_coroutine_create(run_lua, runtime):
    # As in Lua: replacing coroutine.create changes nothing for wrap.
    outcome, _, _ = await run_lua(
        "coroutine.create = nil\nlocal f = coroutine.wrap(function() return 1 end)\nreturn f()",
        runtime=runtime,
    )
    assert outcome.result == 1


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_bytecode_is_refused(run_lua, runtime):
    outcome, _, _ = await run_lua(
        r"""
        local f1, e1 = loadstring("\27LuaQ\0\1\4\8\4\8\0")
        local sent = false
        local f2, e2 = load(function()
          if sent then return nil end
          sent = true
          return "\27LJ\2"
        end)
        return f1, e1, f2, e2
        """,
        runtime=runtime,
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result[0] is None and "precompiled" in outcome.result[1]
    assert outcome.result[2] is None and "precompiled" in outcome.result[3]


async def test_loadstring_of_text_runs_in_the_sandbox(run_lua):
    outcome, _, _ = await run_lua(
        """
        local f = loadstring("return 1 + 1, io, os.execute, type(sleep)")
        local parts = {"return ", "7"}
        local g = load(function() return table.remove(parts, 1) end)
        return {f()}, select("#", f()), g()
        """
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result[0] == {"1": 2, "4": "function"}
    assert outcome.result[1] == 4
    assert outcome.result[2] == 7


async def test_string_dump_is_gone_from_string_methods(run_lua):
    outcome, _, _ = await run_lua('return ("x").dump, string.dump, getmetatable("").__index.dump')
    assert outcome.result == [None, None, None]


async def test_debug_has_only_traceback(run_lua):
    outcome, _, _ = await run_lua(
        "local n = 0 for k in pairs(debug) do n = n + 1 end return n, type(debug.traceback)"
    )
    assert outcome.result == [1, "function"]


async def test_script_changes_to_string_do_not_reach_the_engine(run_lua):
    outcome, _, _ = await run_lua(
        """
        string.sub = function() error("hijacked") end
        string.format = nil
        getmetatable("").__index = function() error("hijacked too") end
        print("still", "fine")
        local ok, err = pcall(error, "x")
        return ok, err
        """
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == [False, "x"]


@pytest.mark.parametrize("runtime", ["lua51", "luajit"])
async def test_table_sort(run_lua, runtime):
    source = """
    local function sorted(t, comp)
      for i = 2, #t do
        if (comp or function(a, b) return a < b end)(t[i], t[i - 1]) then return false end
      end
      return true
    end
    local cases = {}
    for n = 0, 40 do
      local random, ascending, descending, equal = {}, {}, {}, {}
      for i = 1, n * 37 do
        random[i] = (i * 7919) % 101
        ascending[i], descending[i], equal[i] = i, -i, 5
      end
      cases[#cases + 1] = random
      cases[#cases + 1] = ascending
      cases[#cases + 1] = descending
      cases[#cases + 1] = equal
    end
    for _, t in ipairs(cases) do
      local copy = {unpack(t)}
      table.sort(t)
      table.sort(copy, function(a, b) return a > b end)
      assert(sorted(t) and sorted(copy, function(a, b) return a > b end))
    end
    local words = {"pear", "apple", "fig"}
    table.sort(words)
    local by_length = {{n = 3}, {n = 1}, {n = 2}}
    table.sort(by_length, function(a, b) return a.n < b.n end)
    local errors = {}
    for _, args in ipairs({{{1, "x", 2}}, {nil}, {{2, 1}, 7}}) do
      errors[#errors + 1] = select(2, pcall(function() table.sort(unpack(args, 1, 2)) end))
    end
    return words, by_length[1].n .. by_length[3].n, errors
    """
    outcome, _, _ = await run_lua(source, runtime=runtime)
    assert outcome.status == "succeeded", outcome.error
    words, ends, errors = outcome.result
    assert words == ["apple", "fig", "pear"] and ends == "13"
    assert "attempt to compare" in errors[0]
    assert errors[1].endswith("bad argument #1 to 'sort' (table expected, got nil)")
    assert errors[2].endswith("bad argument #2 to 'sort' (function expected, got number)")


@pytest.mark.parametrize("runtime", RUNTIMES)
async def test_a_script_that_replaces_math_floor_does_not_change_the_engines_sort(run_lua, runtime):
    """The script gets the runtime's own math table; the engine's lazily loaded
    part (table.sort, coroutines...) must use the floor it captured before any
    script ran, not whatever the script left in math.floor."""
    outcome, _, _ = await run_lua(
        """
        local calls = 0
        math.floor = function(x) calls = calls + 1; return 1 end
        local t = {}
        for i = 1, 200 do t[i] = (i * 7919) % 211 end
        table.sort(t)
        for i = 2, #t do assert(t[i - 1] <= t[i], "not sorted at " .. i) end
        return calls
        """,
        runtime=runtime,
    )
    assert outcome.status == "succeeded", outcome.error
    assert outcome.result == 0
