-- The engine side of a run, loaded once into each fresh runtime as "=(engine)".
--
-- It captures what it needs from the real globals, builds the script's
-- environment (the sandbox of docs/lua-api.md), and returns the functions the
-- Python driver calls. Everything here uses captured locals only, so a script
-- that rewrites string, table or its globals cannot change the engine.
--
-- Lines between "--{{ lua51" and "--}}" are compiled for Lua 5.1 only, those
-- between "--{{ luajit" and "--}}" for LuaJIT only (see runtime.py): each
-- runtime carries only its own half.
--
-- Arguments: the Python callables of the host (never exposed to the script):
-- call, tick, trip, output, limit (true: arm the memory limit, false: lift
-- it), more (the bytecode of sandbox_more.lua), under LuaJIT instrument
-- (else nil), and for a debug run debug (else nil: see debugger.lua); then HOOK_EVERY (instructions before the first limit check),
-- MAX_BYTES (memory limit), ASK_EVERY, CHECK_LOW and CHECK_HIGH (the pacing
-- of the limit checks), and the names of the bindings, in the order
-- host_call numbers them. They arrive as arguments rather than in a table:
-- one call from Python sets the whole engine up.

local host_call, host_tick, host_trip, host_output, host_limit, host_more, host_instrument,
  host_debug, HOOK_EVERY, MAX_BYTES, ASK_EVERY, CHECK_LOW, CHECK_HIGH = ...
local FIRST_BINDING = 14 -- the position of the first binding name among the arguments

local _G = _G
local type, select, tostring, error, unpack = type, select, tostring, error, unpack
local pairs, ipairs, setmetatable = pairs, ipairs, setmetatable
local raw_rawget, raw_rawset = rawget, rawset
local raw_getfenv, raw_setfenv, raw_loadstring = getfenv, setfenv, loadstring
local gc = collectgarbage
local raw_pcall = pcall
local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local co_status, co_running = coroutine.status, coroutine.running
local sethook, gethook, getinfo = debug.sethook, debug.gethook, debug.getinfo
local raw_getmetatable = debug.getmetatable
local getlocal, getupvalue, raw_setmetatable = debug.getlocal, debug.getupvalue, debug.setmetatable
local ud_getfenv, ud_setfenv = debug.getfenv, debug.setfenv
local s_sub, s_byte, s_rep, s_format = string.sub, string.byte, string.rep, string.format
local s_find = string.find
local t_concat = table.concat

-- The memory limit holds while script code runs; it is lifted (disarm) while
-- Python hands values to Lua, whose allocations lupa makes outside Lua's
-- error protection (a failure there would abort the process). host_call
-- lifts it itself on entry (one crossing less per binding call), and the
-- Python side lifts it again after every step.
local armed = false
local function arm()
  armed = true
  host_limit(true)
end
local function disarm()
  armed = false
  host_limit(false)
end
-- host_instrument (LuaJIT only) rewrites source so that compiled loops check
-- the limits too.

local ENGINE = getinfo(1, "S").source

-- What host_tick, host_output and host_call report, as numbers (a number
-- crosses from Python without allocating).
local REASONS = { "instructions", "wall_seconds", "memory_bytes", "output_bytes", "cancelled" }

-- Raised (never as a string) when a limit is hit or the run is cancelled.
-- No sandbox function lets a script catch it: once tripped, every hook and
-- binding call raises it again.
local LIMIT = setmetatable({}, { __tostring = function() return "limit exceeded" end })
-- Yielded by a waiting binding up to the Python driver.
local WAIT = {}
local tripped = false

local function pack(...)
  return { n = select("#", ...), ... }
end

-- ------------------------------------------------------------ script frames

local function is_script_source(source)
  return source ~= ENGINE and source ~= "=[C]"
end

-- The metatable of the engine's weak-keyed tables (one for all: every
-- runtime carries it).
local WEAK_KEYS = { __mode = "k" }

-- Main functions of instrumented chunks (they are not Lua's "main" kind).
local main_functions = setmetatable({}, WEAK_KEYS)

-- The debugger of a debug run (debugger.lua), nil in every other run.
local dbg = nil
-- While a watch expression runs: the instructions it has left (see charge).
local watch_left = nil

--{{ luajit
-- For a chunk whose instrumented text does not compile: interpreted, it calls hooks.
local jit_off = jit.off
--}}

-- Frames of `co` (nil: the running coroutine) that belong to the script.
local function script_frames(co, level)
  local frames = {}
  while true do
    local info
    if co then info = getinfo(co, level, "Slnf") else info = getinfo(level, "Slnf") end
    if not info then break end
    if info.what ~= "C" and info.what ~= "tail" and is_script_source(info.source) then
      local name
      local main = info.what == "main" or main_functions[info.func]
      if main then
        name = "main chunk"
      elseif info.name then
        name = "function '" .. info.name .. "'"
      else
        name = "function <" .. s_sub(info.source, 2) .. ":" .. info.linedefined .. ">"
      end
      frames[#frames + 1] = { source = info.source, line = info.currentline, name = name }
    end
    level = level + 1
  end
  return frames
end

local function current_line()
  local level = 2
  while true do
    local info = getinfo(level, "Sl")
    if not info then return nil end
    if info.what ~= "C" and is_script_source(info.source) and info.currentline > 0 then
      return info.currentline
    end
    level = level + 1
  end
end

local recording = false -- trip is telling the host: a check now must let it finish

local function trip(reason)
  if not tripped then
    tripped, recording = true, true
    -- Lifted first: with the heap at the memory limit (a common reason to be
    -- here), finding the line would fail and the reason never reach Python.
    -- No script code runs on: every check and binding raises LIMIT now.
    if armed then disarm() end
    host_trip(reason, current_line())
    recording = false
  end
  error(LIMIT, 0)
end

-- ------------------------------------------------------------ the limit checks
-- A check runs every so many instructions (Lua 5.1: a count hook) or loop
-- iterations and calls (LuaJIT: the counters written into the script, see
-- instrument.py). It costs little as long as it stays in Lua: it adds up
-- what ran, and asks the host (a call into Python, which needs Python's
-- lock) only every ASK_EVERY seconds of CPU time, or when the instructions
-- the host allowed are used up, whichever comes first. host_tick answers
-- whether to stop and how many instructions are left to the running
-- activation. The checks themselves are spaced by time too: about PACE
-- seconds apart at the pace seen, so they cost next to nothing in a fast
-- loop and still come often in a slow one (the spacing grows at most
-- eightfold at a time, between CHECK_LOW and CHECK_HIGH: a burst of fast
-- iterations must not space the checks of slow ones too far apart). Each
-- counter is paced from its own previous check: paced from the last check of
-- any counter, a loop calling functions (whose call checks come often) saw
-- its own checks as close together and spaced them to CHECK_HIGH.
local clock, floor = os.clock, math.floor
local PACE = ASK_EVERY / 4
local spent = 0        -- instructions run since the host was last asked
local allowed = 0      -- instructions the host allowed then (0: ask at the next check)
local asked_at = clock()

-- The pending finalizers run from here (see "finalizers" below).
local run_finalizers

-- `given` instructions ran since the previous check of this counter, made
-- at CPU time `paced`; the number to run until its next one, and the time
-- of this check.
local function charge(given, paced)
  if watch_left then
    -- A watch expression of the debugger: a budget of its own, the run's
    -- limits untouched.
    watch_left = watch_left - given
    if watch_left < 0 then error(LIMIT, 0) end
    return CHECK_LOW, paced
  end
  if tripped then
    -- (A count hook can fire inside trip itself, which is Lua code too.)
    if recording then return CHECK_HIGH, paced end
    error(LIMIT, 0)
  end
  spent = spent + given
  local now = clock()
  if spent >= allowed or now - asked_at >= ASK_EVERY then
    local code, left, debug_news = host_tick(gc("count"), current_line(), spent)
    if code then trip(REASONS[code]) end
    if debug_news and dbg then dbg.sync() end
    spent, allowed, asked_at = 0, left, now
  end
  if run_finalizers then run_finalizers() end
  local ahead = given * 8
  local elapsed = now - paced
  if elapsed > 0 and given * PACE / elapsed < ahead then ahead = given * PACE / elapsed end
  if ahead > CHECK_HIGH then ahead = CHECK_HIGH end
  if ahead < CHECK_LOW then ahead = CHECK_LOW end
  -- Never past the activation's instruction limit: the last check falls on it.
  if ahead > allowed - spent then ahead = allowed - spent end
  if ahead < 1 then return 1, now end
  return floor(ahead), now
end

-- A new activation runs from the next step on: its own limits apply from
-- its first check.
local function new_activation()
  spent, allowed = 0, 0
end

--{{ lua51
-- Lua 5.1: a count hook. Hooks are per coroutine: coroutines made from now
-- on start with the latest count.
local hook_every = HOOK_EVERY
local hook_paced = clock()

local function hook()
  local _, _, count = gethook()
  local every
  every, hook_paced = charge(count, hook_paced)
  if every ~= count then sethook(hook, "", every) end
  hook_every = every
end
--}}

--{{ luajit
-- LuaJIT: hooks never run in compiled code (and slow the interpreter down
-- before it), so the script is instrumented instead (instrument.py): a
-- counter in each compiled chunk, spent by loop iterations and tail calls,
-- calls the chunk's budget function when it runs out; and a call check in
-- each function that can call another.
local function new_budget()
  local given, paced = 0, clock()
  return function()
    given, paced = charge(given, paced)
    return given
  end
end

local function new_call_check()
  local budget = new_budget()
  local n = 0
  return function()
    n = n - 1
    if n < 0 then n = budget() end
  end
end
--}}

local function hooked(co)
  --{{ lua51
  sethook(co, hook, "", hook_every)
  --}}
  return co
end

local function new_coroutine(f)
  return hooked(co_create(f))
end
--{{ lua51
sethook(hook, "", HOOK_EVERY)
--}}

-- ------------------------------------------------------------ coroutines

local drivers = setmetatable({}, WEAK_KEYS)  -- main chunk and listener callbacks
local parent_of = setmetatable({}, WEAK_KEYS) -- protected-call coroutine -> its caller

-- The coroutine the script believes it runs in (protected calls are invisible).
local function logical(co)
  while parent_of[co] do co = parent_of[co] end
  return co
end

local function is_memory_error(err)
  return err == "not enough memory"
end

local function check_limit(err)
  if err == LIMIT or tripped then error(LIMIT, 0) end
  if is_memory_error(err) then trip("memory_bytes") end
end

-- "name:line: " of the innermost script frame, for errors raised by the
-- engine on the script's behalf (error(msg, 2) would name an engine frame,
-- or nothing after a tail call).
-- Under Lua 5.1 a pcall runs its function as a coroutine: the search goes
-- on in the coroutine that called it.
local function script_where()
  local co, level = nil, 2
  while true do
    local info
    if co then info = getinfo(co, level, "Sl") else info = getinfo(level, "Sl") end
    if not info then
      co, level = parent_of[co or co_running()], 0
      if not co then return "" end
    else
      if info.what ~= "C" and is_script_source(info.source) and info.currentline > 0 then
        return s_sub(info.source, 2) .. ":" .. info.currentline .. ": "
      end
      level = level + 1
    end
  end
end

-- ------------------------------------------------------------ C stack
-- Resuming a coroutine, and the C functions that call script code back
-- (string.gsub with a function or table, table.sort, string.format calling
-- __tostring) each nest a level of C calls on the thread's own stack.
-- LuaJIT counts none of them (Lua 5.1 stops at 200 C levels): a recursive
-- coroutine.wrap or a gsub callback calling gsub ran the thread out of
-- stack and killed the whole worker process. `nest` counts the levels in
-- use; past MAX_NEST the next one is refused with a Lua error. Each level
-- is given back when its call returns; an error skips that, so whatever
-- catches errors (pcall, xpcall, resume, the driver's step) sets the count
-- back to what it was when it started.
local MAX_NEST = 200
local nest = 0

local function nest_in(message)
  if nest >= MAX_NEST then error(script_where() .. message, 0) end
  nest = nest + 1
end

-- co_resume(co, ...) as a packed table, as one more C level.
local function resume_nested(co, ...)
  local saved = nest
  nest_in("coroutine nesting too deep")
  local res = pack(co_resume(co, ...))
  nest = saved
  return res
end

-- Its functions are loaded on first use (see "the rarely used parts" below).
local sb_coroutine = {}

-- ------------------------------------------------------------ pcall / xpcall
-- Lua 5.1 cannot yield across its own pcall, so these run the protected
-- function as a coroutine: a waiting binding inside yields through them.

local failed_co = nil -- while an xpcall handler runs: the coroutine that failed

local sb_pcall, sb_xpcall

--{{ lua51

local function protected(f, ...)
  local fn = f
  if type(f) == "function" and getinfo(f, "S").what == "C" then
    -- A C function cannot yield; a plain pcall keeps its exact error (and a
    -- coroutine could not even run it in Lua 5.1).
    local saved = nest
    local res = pack(raw_pcall(f, ...))
    nest = saved
    if not res[1] then check_limit(res[2]) end
    return nil, res
  end
  if type(f) ~= "function" then
    local mt = raw_getmetatable(f)
    if not (mt and raw_rawget(mt, "__call")) then
      return nil, { n = 2, false, "attempt to call a " .. type(f) .. " value" }
    end
    fn = function(...) return f(...) end
  end
  local co = hooked(co_create(fn))
  parent_of[co] = co_running()
  local res = resume_nested(co, ...)
  while res[1] and co_status(co) == "suspended" do
    res = resume_nested(co, co_yield(unpack(res, 2, res.n)))
  end
  if not res[1] then
    check_limit(res[2])
    if dbg then dbg.error_at(res[2], co) end
  end
  return co, res
end

function sb_pcall(f, ...)
  local _, res = protected(f, ...)
  if dbg and not res[1] then dbg.caught() end
  return unpack(res, 1, res.n)
end

function sb_xpcall(f, handler, ...)
  local co, res = protected(f, ...)
  if res[1] then return unpack(res, 1, res.n) end
  local outer = failed_co
  failed_co = co
  local _, handled = protected(handler, res[2])
  failed_co = outer
  if handled[1] then return false, handled[2] end
  return false, "error in error handling"
end
--}}

--{{ luajit
-- LuaJIT can yield across its own pcall and xpcall, and runs the handler
-- where the error happened (with the stack intact): use them, only keeping
-- limit errors uncatchable.
local raw_xpcall = xpcall

-- An error raised by a C function the engine calls on the script's behalf
-- names the engine's frame ("(engine):N: bad argument #2 to 'format'"):
-- caught where it is raised, it is placed at the script's line instead.
local function engine_place(e)
  if type(e) == "string" and s_byte(e, 1) == 40 then -- "("
    local _, last = s_find(e, "^%(engine%):%d+: ")
    if last then return script_where() .. s_sub(e, last + 1) end
  end
  return e
end

-- engine_place, and for the debugger the frames where the error happens.
local function pcall_handler(e)
  e = engine_place(e)
  if dbg and not tripped then dbg.error_at(e) end
  return e
end

function sb_pcall(f, ...)
  local saved = nest
  local res = pack(raw_xpcall(f, pcall_handler, ...))
  nest = saved
  if not res[1] then
    check_limit(res[2])
    if dbg then dbg.caught() end
  end
  return unpack(res, 1, res.n)
end

function sb_xpcall(f, handler, ...)
  local function handle(e)
    if e == LIMIT or tripped or is_memory_error(e) then return LIMIT end
    if dbg then dbg.error_at(engine_place(e)) end
    return handler(engine_place(e))
  end
  local saved = nest
  local res = pack(raw_xpcall(f, handle, ...))
  nest = saved
  if not res[1] then
    check_limit(res[2])
    if dbg then dbg.caught() end
  end
  return unpack(res, 1, res.n)
end
--}}

-- ------------------------------------------------------------ finalizers
-- A __gc metamethod (of a userdata from newproxy(true), the only kind Lua
-- 5.1 and LuaJIT call) would run whenever the collector frees its object:
-- in Lua 5.1 with hooks off, inside Python's conversions with the memory
-- limit lifted, or when the finished runtime is closed, where no limit holds
-- any more (a spinning __gc wedged the worker's threads). newproxy (in
-- sandbox_more.lua) keeps the script from ever setting a real __gc: the
-- finalizers of collected objects are queued, and run from the limit
-- checks, within the run's limits.

local hooking = false -- (LuaJIT) in a hook, where no hook would count the finalizers

-- A line of the run's output (print, finalizer errors, the debugger).
local function output(text)
  local code = host_output(text)
  if code then trip(REASONS[code]) end
end

-- ------------------------------------------------------------ the environment

-- Sized up front (the constructor), so that filling it does not rehash.
local env = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  rawequal = rawequal, rawget = rawget, rawset = rawset, select = select,
  tonumber = tonumber, tostring = tostring, type = type, unpack = unpack,
  getmetatable = getmetatable, setmetatable = setmetatable,
  gcinfo = gcinfo, _VERSION = _VERSION,
  pcall = sb_pcall, xpcall = sb_xpcall, coroutine = sb_coroutine,
  debug = {}, -- traceback: see "the rarely used parts"
  -- The engine uses nothing of math and table but the locals captured
  -- above, and nothing else in the runtime runs script-visible code: the
  -- script gets the tables themselves (no copy per run).
  math = math, table = table,
  os = { time = os.time, clock = os.clock, date = os.date, difftime = os.difftime },
}
env._G = env

-- The string table is shared with the string metatable ("x"):upper(), so it
-- is edited in place; the engine keeps its own references above.
string.dump = nil
string.rep = function(s, n, ...)
  if type(n) == "number" and (type(s) == "string" or type(s) == "number") then
    local sep = ...
    local size = #tostring(s) * n
    if type(sep) == "string" then size = size + #sep * n end
    if size > MAX_BYTES then trip("memory_bytes") end
    -- Repeating nothing a billion times is one long C loop for nothing.
    if size == 0 then return "" end
  end
  return s_rep(s, n, ...)
end
--{{ luajit
-- The C functions that call script code back: string.gsub with a function
-- or table, string.format with a table or userdata (its __tostring). Such
-- a call is one more C level (Lua 5.1 counts these itself). They are called
-- through a table, so that LuaJIT names them in their argument errors;
-- those errors are placed at the engine's frame, "(engine):N:", which pcall
-- and xpcall move to the script's line (see engine_place), as the driver
-- does for a run's error. An error skips giving the level back: whatever
-- catches it sets the count back (see "C stack"). The checks cost nothing
-- once compiled (a value's type is known in a trace), while counting every
-- string.format would keep LuaJIT from compiling it well (twice as slow).
local c_raw = { gsub = string.gsub, format = string.format }

local function calls_back(value)
  local kind = type(value)
  return kind == "table" or kind == "userdata" or kind == "function"
end

string.gsub = function(s, pattern, repl, n)
  if not calls_back(repl) then
    local r, count = c_raw.gsub(s, pattern, repl, n)
    return r, count
  end
  nest_in("C stack overflow")
  local r, count = c_raw.gsub(s, pattern, repl, n)
  nest = nest - 1
  return r, count
end

local function format_nested(...)
  nest_in("C stack overflow")
  local r = c_raw.format(...)
  nest = nest - 1
  return r
end

string.format = function(fmt, ...)
  local a, b, c, d = ...
  if select("#", ...) > 4 or calls_back(a) or calls_back(b) or calls_back(c) or calls_back(d) then
    return format_nested(fmt, ...)
  end
  local r = c_raw.format(fmt, ...)
  return r
end
--}}
env.string = string

-- Compile source text into a function of the script's environment. Syntax
-- errors come from the text as written; under LuaJIT the function actually
-- returned is built from the instrumented text.
local function compile_text(text, chunkname, line_checks)
  local fn, err = raw_loadstring(text, chunkname)
  if not fn then return nil, err end
  --{{ lua51
  if line_checks then
    -- A debug run's main chunk: with the debugger's line checks, the line
    -- function an upvalue (see debuglines.py).
    local rewritten, last_line = host_debug("rewrite", text)
    local outer = raw_loadstring(rewritten, chunkname)
    if outer then
      raw_setfenv(outer, env)
      fn = outer(dbg.armed, dbg.D)
      main_functions[fn] = true
      dbg.set_last_line(last_line)
    end
  end
  --}}
  --{{ luajit
  local was_armed = armed
  if was_armed then disarm() end
  -- The counter is a local of the chunk's main function (a register in its
  -- compiled loops); where that does not compile (a function already at
  -- Lua's limit of locals), an upvalue of a wrapper around it. A debug
  -- run's main chunk gets the debugger's line checks too.
  local instrumented, fallback, last_line
  if line_checks then
    instrumented, fallback, last_line = host_debug("rewrite", text)
    dbg.set_last_line(last_line)
  else
    instrumented, fallback = host_instrument(text)
  end
  if was_armed then arm() end
  local outer = raw_loadstring(instrumented, chunkname) or raw_loadstring(fallback, chunkname)
  if outer then
    raw_setfenv(outer, env)
    if line_checks then
      fn = outer(new_budget(), new_call_check(), dbg.armed, dbg.D)
    else
      fn = outer(new_budget(), new_call_check())
    end
    main_functions[fn] = true
  else
    -- (A function already at Lua's limit of upvalues, say.) Never compiled,
    -- the chunk is stopped by a count hook like Lua 5.1 code (LuaJIT's hooks
    -- are global: one covers its coroutines too).
    jit_off(fn, true)
    local budget = new_budget()
    local function hook()
      hooking = true
      local every = budget()
      hooking = false
      sethook(hook, "", every)
    end
    sethook(hook, "", HOOK_EVERY)
  end
  --}}
  raw_setfenv(fn, env)
  return fn
end

-- ------------------------------------------------------------ the rarely used parts
-- The coroutine library, getfenv/setfenv, loadstring/load, collectgarbage and
-- debug.traceback live in sandbox_more.lua, loaded the first time a script
-- calls one of them: most scripts never do, and each runtime is smaller and
-- quicker to make without them. The script holds stubs that call them one
-- frame down.

local more -- the functions of sandbox_more.lua, once loaded

-- The userdata of newproxy(true) share a metatable of the engine's
-- (sandbox_more.lua) whose __metatable is PROXY: getmetatable gives the
-- proxy's own instead, the table the script fills (or what it set as that
-- table's __metatable).
local PROXY = {}

local function load_more()
  -- What Python hands over is pushed outside Lua's protection: lifted.
  local was_armed = armed
  if was_armed then disarm() end
  local code = host_more()
  if was_armed then arm() end
  local chunk, err = raw_loadstring(code, ENGINE)
  if not chunk then
    if is_memory_error(err) then trip("memory_bytes") end
    error(err, 0)
  end
  -- Positional, in the order sandbox_more.lua takes them: a table
  -- constructor with named fields would keep a template table and its key
  -- strings in this function's code for the whole run (4 KB of every held
  -- runtime, which mostly never loads this chunk).
  more = chunk(
    type, error, tostring, unpack, pack, co_yield, co_status, co_running, getinfo,
    raw_getfenv, raw_setfenv, s_byte, s_sub, t_concat, gc, ipairs, new_coroutine, check_limit,
    logical, drivers, is_script_source, compile_text, env, WAIT, script_frames, parent_of,
    resume_nested, raw_getmetatable, raw_rawget, raw_setmetatable,
    raw_pcall, LIMIT, is_memory_error, output, PROXY, ud_getfenv, ud_setfenv, script_where,
    -- The engine's changing state, through one function (a getter each
    -- would keep four functions' code here).
    function(finalizers)
      if finalizers then run_finalizers = finalizers end
      return failed_co, tripped, hooking
    end
    --{{ luajit
    -- floor: captured before any script ran (the script's math is this math).
    , raw_xpcall, engine_place, s_find, floor
    --}}
  )
  return more
end

local function pass(...)
  return ...
end

-- Not a tail call: the function below keeps this frame above the script's,
-- which its error levels count on.
local function stub(name)
  return function(...)
    return pass((more or load_more())[name](...))
  end
end

for _, name in ipairs({ "create", "resume", "wrap", "yield", "running", "status" }) do
  sb_coroutine[name] = stub(name)
end
for _, name in ipairs({ "getfenv", "setfenv", "loadstring", "load", "collectgarbage" }) do
  env[name] = stub(name)
end
env.debug.traceback = stub("traceback")
-- (No frame of its own: newproxy raises no error that names a level.) The
-- first call puts the real one in its place, one call less per proxy, unless
-- the script has put a newproxy of its own there.
local function newproxy_stub(arg)
  local newproxy = (more or load_more()).newproxy
  if raw_rawget(env, "newproxy") == newproxy_stub then env.newproxy = newproxy end
  return newproxy(arg)
end
env.newproxy = newproxy_stub

-- A proxy's own metatable, or what the script set as its __metatable.
env.getmetatable = function(...)
  if select("#", ...) == 0 then
    error(script_where() .. "bad argument #1 to 'getmetatable' (value expected)", 0)
  end
  local mt = getmetatable(...)
  if mt ~= PROXY then return mt end
  local own = ud_getfenv((...))
  local locked = raw_rawget(own, "__metatable")
  if locked == nil then return own end
  return locked
end
--{{ luajit
table.sort = stub("sort")
--}}

function env.print(...)
  if tripped then error(LIMIT, 0) end
  local n = select("#", ...)
  local parts = {}
  local tostr = env.tostring
  if type(tostr) ~= "function" then tostr = tostring end
  for i = 1, n do
    local s = tostr((select(i, ...)))
    if type(s) ~= "string" and type(s) ~= "number" then
      error("'tostring' must return a string to 'print'", 2)
    end
    parts[i] = s
  end
  output(t_concat(parts, "\t", 1, n))
end

-- Nothing of Python stays reachable, even from the engine's own globals.
-- The libraries that neither the engine (it captured what it uses) nor the
-- script's environment refer to go too: a runtime is made for every run and
-- thousands may be alive at once, and these are an eighth of its heap (freed
-- by the first collection; LuaJIT's jit and bit, 2.5 KB of a sleeping run's
-- 75). The real coroutine library goes as well (the script has its own,
-- the engine its captured functions: 0.8 KB). The collector does not close
-- io's standard files; under Lua 5.1 the registry keeps the metatable their
-- finalizer checks. With package gone no loadlib handle or preloaded module
-- can be made: their metatable and loaders go (LuaJIT: with the files'
-- metatable, which its finalizer does not look up, 1 KB).
local registry = debug.getregistry()
local loaded = registry._LOADED or {}
for _, name in ipairs({ "python", "io", "os", "package", "debug", "jit", "bit", "coroutine" }) do
  _G[name] = nil
  loaded[name] = nil
end
_G.require, _G.module, _G.dofile, _G.loadfile = nil, nil, nil, nil
registry._LOADLIB, registry._PRELOAD = nil, nil
--{{ luajit
registry["FILE*"] = nil
--}}

-- ------------------------------------------------------------ bindings

-- Values that cross to Python without lupa allocating in Lua for them.
local PLAIN = { ["nil"] = true, boolean = true, number = true, string = true }

local function all_plain(n, ...)
  for i = 1, n do
    if not PLAIN[type((select(i, ...)))] then return false end
  end
  return true
end


-- A binding is a plain Lua function around the private host_call: the script
-- never holds a Python object. Results: 0 values, 1 wait (yield to the
-- driver, which resumes with the final answer), 2 error text, 3 limit.
local function call_binding(index, ...)
  if tripped then error(LIMIT, 0) end
  if watch_left then error("a watch expression cannot call the platform's functions", 0) end
  -- Tables and functions get a reference in the registry as they cross
  -- (an allocation): lifted before. Otherwise host_call lifts the limit
  -- itself on entry, for what lupa pushes back.
  if not all_plain(select("#", ...), ...) then disarm() end
  armed = false
  local r = pack(host_call(index, ...))
  if r[1] == 1 then
    -- Stays lifted up to the driver, whose next step arms it again.
    r = pack(co_yield(WAIT, r[2], current_line()))
  else
    arm()
  end
  local kind = r[1]
  if kind == 0 then return unpack(r, 2, r.n) end
  -- Placed at the script's line even when the binding was tail-called, where
  -- error(msg, 2) would name no line.
  if kind == 2 then error(script_where() .. r[2], 0) end
  trip(REASONS[r[2]] or "cancelled")
end

-- Each binding is a closure of two upvalues, made in every runtime: with
-- the eighteen of the body above, each was 130 bytes bigger.
local function make_binding(index)
  return function(...)
    return call_binding(index, ...)
  end
end

for i = 1, select("#", ...) - FIRST_BINDING + 1 do
  env[(select(i + FIRST_BINDING - 1, ...))] = make_binding(i)
end

-- ------------------------------------------------------------ the driver API

local engine = {}

local function compile(source, name)
  if s_byte(source, 1) == 27 then return nil, "precompiled chunks are not accepted" end
  return compile_text(source, "=" .. name, dbg ~= nil)
end

-- A driver coroutine: the main chunk or one listener callback call.
-- Coroutines stay on this side (lupa cannot hand an unstarted one back): the
-- driver knows them by number.
local driven = {}
local last_driven = 0

--{{ luajit
-- LuaJIT unwinds a failed coroutine's frames, so there the script's frames
-- are taken where the error happens, by an xpcall handler.
local failure_frames = setmetatable({}, WEAK_KEYS)

local function capture(e)
  if e ~= LIMIT and not tripped and not is_memory_error(e) then
    failure_frames[co_running()] = script_frames(nil, 2)
    if dbg then dbg.error_at(e) end
  end
  return e
end

local function keeping_frames(fn)
  return function(...)
    local res = pack(raw_xpcall(fn, capture, ...))
    if res[1] then return unpack(res, 2, res.n) end
    error(res[2], 0)
  end
end
--}}

function engine.start(fn)
  --{{ luajit
  fn = keeping_frames(fn)
  --}}
  local co = new_coroutine(fn)
  drivers[co] = true
  last_driven = last_driven + 1
  driven[last_driven] = co
  return last_driven
end

local waited = false -- the run has waited in a binding (see after_resume)

-- What a resume gave, for the driver (see engine.step). Whatever is
-- allocated for it is allocated with the memory limit lifted (a full heap
-- must not fail outside the script); plain values need nothing, and the
-- Python side lifts the limit as soon as the call returns.
local function after_resume(id, co, ok, ...)
  local dead = co_status(co) == "dead"
  if dead then
    driven[id] = nil
    if dbg then dbg.ended(id) end
  end
  if ok then
    if dead then
      local n = select("#", ...)
      if armed and not all_plain(n, ...) then disarm() end
      armed = false
      return 0, n, ...
    end
    if armed then disarm() end
    if (...) == WAIT then
      if not waited then
        -- The first wait of the run: what it holds while it waits is what is
        -- alive, not the setup's garbage (a full collection at the start
        -- would cost every run, most of which never wait).
        waited = true
        gc("collect")
      end
      return 1, select(2, ...)
    end
    return 2, "attempt to yield from outside a coroutine", script_frames(co, 0)
  end
  if armed then disarm() end
  local err = ...
  if err == LIMIT or tripped then return 3 end
  if is_memory_error(err) then
    tripped = true
    local frames = script_frames(co, 0)
    local line = frames[1] and frames[1].line
    host_trip("memory_bytes", line and line > 0 and line or nil)
    return 3
  end
  local frames
  --{{ luajit
  frames = failure_frames[co]
  --}}
  --{{ lua51
  if dbg then dbg.error_at(err, co) end
  --}}
  return 2, err, frames or script_frames(co, 0)
end

-- Resume a driver coroutine. Returns one of
--   0, n, values...              finished with these n return values
--   1, token, line               waiting on binding call `token`
--   2, error_value, frames       failed with an error
--   3                            stopped by a limit or cancellation
function engine.step(id, ...)
  local co = driven[id]
  if dbg then dbg.enter(id) end
  new_activation()
  nest = 0 -- a step starts on an empty stack
  arm()
  return after_resume(id, co, co_resume(co, ...))
end

-- The main chunk: compile `source`, make `args` the global args (and the
-- chunk's `...`), and take the first step. Returns the driver coroutine's
-- number and the step's results, or nil and the syntax error.
--
-- The collector is stopped while the runtime is set up (the host stops it
-- before loading the engine): collecting a heap that only grows is wasted
-- work, and it was most of the cost of a run's setup. It starts again as
-- the script does, its first cycle due once the heap has doubled (as after
-- a full collection), so that a short run never pays for one; the setup's
-- garbage (a sixth of the heap) is freed when the run first waits (see
-- after_resume), where it would otherwise stay for the whole wait.
function engine.begin(source, name, args)
  local fn, err = compile(source, name)
  if not fn then return nil, err end
  if args == nil then args = {} end
  env.args = args
  gc("restart", -1)
  local id = engine.start(fn)
  return id, engine.step(id, args)
end

-- Functions handed to Python (listener callbacks) stay here, known to the
-- driver by number. Python must not keep the lupa object it was given: one
-- made inside a coroutine is tied to that coroutine's lua_State, which Lua
-- frees once the coroutine is collected (the main chunk's, soon after it
-- ends); dropping the object later unrefs it through freed memory.
local kept = {}
local last_kept = 0

function engine.keep(fn)
  last_kept = last_kept + 1
  kept[last_kept] = fn
  return last_kept
end

function engine.release(n)
  kept[n] = nil
end

-- A driver coroutine calling kept function `n` (see engine.start).
function engine.start_kept(n)
  return engine.start(kept[n])
end

local ids -- made on first use: most runs never convert a table
local last_id = 0
-- A stable number per table, for cycle detection by the Python converter.
function engine.table_id(t)
  if not ids then ids = setmetatable({}, WEAK_KEYS) end
  local id = ids[t]
  if not id then
    last_id = last_id + 1
    id = last_id
    ids[t] = id
  end
  return id
end

engine.type = type


-- ------------------------------------------------------------ the debugger
-- Loaded only into debug runs, once everything above exists.
if host_debug then
  local code = host_debug("code")
  local raw_xpcall_ok, is_lua51 = {}, false
  --{{ lua51
  is_lua51 = true
  --}}
  --{{ luajit
  raw_xpcall_ok[raw_xpcall] = true
  raw_xpcall_ok[raw_pcall] = true
  --}}
  dbg = assert(raw_loadstring(code, ENGINE))({
    pack = pack, s_gsub = string.gsub, getinfo = getinfo, getlocal = getlocal,
    getupvalue = getupvalue, raw_getmetatable = raw_getmetatable,
    raw_setmetatable = raw_setmetatable, raw_getfenv = raw_getfenv, raw_setfenv = raw_setfenv,
    co_yield = co_yield, co_running = co_running, co_status = co_status, co_resume = co_resume,
    new_coroutine = new_coroutine, parent_of = parent_of, is_script_source = is_script_source,
    WAIT = WAIT, LIMIT = LIMIT, compile_text = compile_text, env = env,
    is_main = function(f) return main_functions[f] end,
    output = output,
    host_debug = host_debug,
    set_evaluating = function(budget) watch_left = budget end,
    yield_ok_c = raw_xpcall_ok,
    PROXY = PROXY, ud_getfenv = ud_getfenv,
    LUA51 = is_lua51,
  })

  -- A request of the host to the debugger (see debugger.lua). Other runs
  -- have none: nothing of it stays in their runtime.
  function engine.debug(op, ...)
    return dbg.request(op, ...)
  end
end

engine.format = s_format

return engine
