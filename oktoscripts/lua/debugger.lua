-- The debugger of a debug run, loaded as "=(engine)" into its runtime by
-- sandbox.lua only when the run is a debug run (a normal run never has it).
--
-- The script of a debug run runs `if B[line] then D(line) end` before the
-- first statement of each line (debuglines.py). B (`armed` here) holds the
-- lines with a breakpoint, or every line while a step or a pause request is
-- on: a line that is not armed costs one table lookup. D decides whether a
-- breakpoint, a step or a pause request applies, and if so pauses: it
-- captures the script's frames (their locals, upvalues and environment, by
-- reference) and yields (WAIT, 0, line) up to the Python driver, exactly
-- like a waiting binding, so a paused run holds no Lua thread. The driver
-- resumes it with the next command: "continue", "over", "in", "out",
-- "cursor" (with a line) or "pause".
--
-- While paused, the host asks about the capture through dbg.request (see
-- its ops below). Inspection never runs script code: tables are read with
-- next (no __pairs, no __index), values are shown by tostring with their
-- metatable taken off for the moment (no __tostring). Watch expressions and
-- breakpoint conditions do run code, under a small instruction budget of
-- their own, and may not call the platform's functions.
--
-- Pausing is possible wherever a waiting binding may wait; where it is not
-- (a gsub callback, a C function calling back; under Lua 5.1 also
-- metamethods and iterators) the line is passed and a note is written to
-- the output.

local core = ...
local type, tostring, next, pairs, ipairs, error = type, tostring, next, pairs, ipairs, error
local select, unpack, pack = select, unpack, core.pack
local s_format, s_sub, s_find, s_gsub = string.format, string.sub, string.find, core.s_gsub
local getinfo, getlocal, getupvalue = core.getinfo, core.getlocal, core.getupvalue
local raw_getmetatable, raw_setmetatable = core.raw_getmetatable, core.raw_setmetatable
local raw_getfenv, raw_setfenv, setmetatable = core.raw_getfenv, core.raw_setfenv, setmetatable
local co_yield, co_running, co_status, co_resume = core.co_yield, core.co_running, core.co_status,
  core.co_resume
local new_coroutine, parent_of, is_script_source = core.new_coroutine, core.parent_of,
  core.is_script_source
local WAIT, LIMIT, compile_text, output = core.WAIT, core.LIMIT, core.compile_text, core.output
local host_debug, set_evaluating, yield_ok_c = core.host_debug, core.set_evaluating, core.yield_ok_c
local LUA51 = core.LUA51
local PROXY, ud_getfenv = core.PROXY, core.ud_getfenv

local dbg = {}

-- ------------------------------------------------------------ state

local breakpoints = {}   -- line -> { condition = text|nil, hit = n, log = text|nil, hits = n }
local mode = nil         -- nil (run) | "pause" | "in" | "over" | "out" | "cursor"
local stepping = false   -- mode ~= nil
local armed = {}         -- line -> true: the lines whose check calls D (B in the script)
local last_line = 0      -- the script's last line
local step_co, step_depth, cursor_line
local break_on_error = false
local pending_error = nil -- { message, frames } of the last error, for a pause on it
local evaluating = false
local capture             -- the frames of the current pause (function below)
local arm_lines           -- (function below)
local paused_by = {}      -- activation -> its pause { reason, line, message, frames }
local current_act = 0     -- the activation (driver coroutine number) running now
local step_act            -- the activation a step was given to
-- Expandable values of the current pauses, by number; `lists` marks those
-- that are lists of { name, value } pairs (a frame's scopes).
local refs, lists, last_ref = {}, {}, 0
local WATCH_BUDGET = 100000 -- instructions (LuaJIT: loop iterations and calls) of a watch

-- Names the engine writes into the script (budget and line checks).
local function visible(name)
  return s_sub(name, 1, 1) ~= "(" and not s_find(name, "^_[BCXKD]%x%x%x%x%x%x%x%x%x%x%x%x$")
end

-- ------------------------------------------------------------ stack walking

-- Script frames of the running coroutine (or of `co`), then of the
-- coroutines that protected calls run it in (Lua 5.1), innermost first.
-- `limit` frames at most (MAX_FRAMES: a pause in a deep recursion shows its
-- innermost ones).
local MAX_FRAMES = 200
function capture(limit, co)
  limit = limit or MAX_FRAMES
  local frames = {}
  local level = co and 0 or 2
  while true do
    local info
    if co then info = getinfo(co, level, "Slnf") else info = getinfo(level, "Slnf") end
    if not info then
      co = parent_of[co or co_running()]
      if not co then break end
      level = 0
    else
      if info.what ~= "C" and info.what ~= "tail" and is_script_source(info.source) then
        local locals = {}
        local i = 1
        while true do
          local name, value
          if co then name, value = getlocal(co, level, i) else name, value = getlocal(level, i) end
          if not name then break end
          if visible(name) then locals[#locals + 1] = { name, value } end
          i = i + 1
        end
        local ups = {}
        i = 1
        while info.func do
          local name, value = getupvalue(info.func, i)
          if not name then break end
          if visible(name) then ups[#ups + 1] = { name, value } end
          i = i + 1
        end
        local label
        if info.what == "main" or core.is_main(info.func) then
          label = "main chunk"
        elseif info.name then
          label = info.name
        else
          label = "function <line " .. info.linedefined .. ">"
        end
        frames[#frames + 1] = {
          name = label, line = info.currentline, locals = locals, upvalues = ups,
          env = info.func and raw_getfenv(info.func) or core.env,
        }
        if limit and #frames >= limit then break end
      end
      level = level + 1
    end
  end
  return frames
end

-- The number of script frames on the logical stack (through protected calls).
local function depth()
  local n, co, level = 0, nil, 2
  while true do
    local info
    if co then info = getinfo(co, level, "S") else info = getinfo(level, "S") end
    if not info then
      co = parent_of[co or co_running()]
      if not co then return n end
      level = 0
    else
      if info.what ~= "C" and info.what ~= "tail" and is_script_source(info.source) then
        n = n + 1
      end
      level = level + 1
    end
  end
end

local function logical(co)
  while parent_of[co] do co = parent_of[co] end
  return co
end

-- Whether the running coroutine can yield from here: no C function between
-- here and its start but those that let a yield through (LuaJIT's pcall);
-- under Lua 5.1 no metamethod or iterator either (a Lua frame that was
-- called by no call instruction has no name, and is no tail call).
local function can_yield()
  local level = 2
  while true do
    local info = getinfo(level, "Snf")
    if not info then return true end
    if info.what == "C" then
      if not yield_ok_c[info.func] then return false end
    elseif LUA51 and info.what ~= "tail" and (info.namewhat == "" or info.name == "(for generator)") then
      local above = getinfo(level + 1, "S")
      if above and above.what ~= "tail" then return false end
    end
    level = level + 1
  end
end

-- ------------------------------------------------------------ showing values

local function show(v)
  local kind = type(v)
  if kind == "string" then
    if #v > 200 then return s_format("%q", s_sub(v, 1, 200)) .. "..." end
    return s_format("%q", v)
  end
  if kind == "table" or kind == "userdata" then
    local mt = raw_getmetatable(v)
    if mt ~= nil then
      raw_setmetatable(v, nil)
      local text = tostring(v)
      raw_setmetatable(v, mt)
      return text
    end
  end
  return tostring(v)
end

local function ref_of(v)
  local kind = type(v)
  if kind ~= "table" and not (kind == "userdata" and raw_getmetatable(v)) then return 0 end
  last_ref = last_ref + 1
  refs[last_ref] = v
  return last_ref
end

local function variable(name, v)
  return { name = name, value = show(v), type = type(v), ref = ref_of(v) }
end

-- A list of { name, value } pairs as an expandable pseudo-value.
local function list_ref(items)
  last_ref = last_ref + 1
  refs[last_ref] = items
  lists[last_ref] = true
  return last_ref
end

-- The metatable the script gave a value: a proxy's own, not the engine's
-- that all proxies share (see sandbox_more.lua).
local function metatable_of(value)
  local mt = raw_getmetatable(value)
  if mt ~= nil and rawget(mt, "__metatable") == PROXY then return ud_getfenv(value) end
  return mt
end

local function children(ref, start, count)
  local value = refs[ref]
  local items, more = {}, false
  if value == nil then return { items = items, more = false } end
  if lists[ref] then
    local list = value
    for i = start + 1, #list do
      if #items >= count then more = true break end
      items[#items + 1] = variable(list[i][1], list[i][2])
    end
    return { items = items, more = more }
  end
  local index = 0
  if type(value) == "table" then
    local k, v = next(value)
    while k ~= nil do
      if index >= start then
        if #items >= count then more = true break end
        local name = type(k) == "string" and k or "[" .. show(k) .. "]"
        items[#items + 1] = variable(name, v)
      end
      index = index + 1
      k, v = next(value, k)
    end
  end
  local mt = metatable_of(value)
  if mt ~= nil and not more and start <= index then
    items[#items + 1] = variable("[metatable]", mt)
  end
  return { items = items, more = more }
end

-- ------------------------------------------------------------ evaluating

-- The environment of a watch expression: the frame's locals (the innermost
-- of a name wins), then its upvalues, then its globals.
local function frame_env(frame)
  local names, values = {}, {}
  for _, pair in ipairs(frame.upvalues) do names[pair[1]], values[pair[1]] = true, pair[2] end
  for _, pair in ipairs(frame.locals) do names[pair[1]], values[pair[1]] = true, pair[2] end
  local globals = frame.env
  return setmetatable({}, {
    __index = function(_, k)
      if names[k] then return values[k] end
      return globals[k]
    end,
    __newindex = function() error("a watch expression cannot assign", 2) end,
  })
end

local function evaluate(expr, frame)
  if type(expr) ~= "string" or expr == "" then return false, "empty expression" end
  local fn, err = compile_text("return " .. expr, "=watch")
  if not fn then return false, err end
  raw_setfenv(fn, frame_env(frame))
  local was = evaluating
  evaluating = true
  set_evaluating(WATCH_BUDGET)
  local co = new_coroutine(fn)
  local res = pack(co_resume(co))
  set_evaluating(was and WATCH_BUDGET or nil)
  evaluating = was
  if not res[1] then
    local e = res[2]
    if e == LIMIT then return false, "watch expression exceeded its instruction budget" end
    return false, type(e) == "string" and e or "error object: " .. show(e)
  end
  if co_status(co) ~= "dead" then return false, "a watch expression cannot wait" end
  return true, res[2]
end

-- ------------------------------------------------------------ configuration

-- Every line while stepping, else the breakpoints' lines (emptied and
-- filled in place: the script holds this very table).
function arm_lines()
  for line in pairs(armed) do armed[line] = nil end
  if stepping then
    for line = 1, last_line do armed[line] = true end
  else
    for line in pairs(breakpoints) do armed[line] = true end
  end
end

-- Breakpoints and options from the host, when they changed: break_on_error,
-- pause, then (line, condition, hit count, log message) for each breakpoint
-- ("" and 0 for none).
local function sync()
  local got = pack(host_debug("sync"))
  if got.n == 0 or got[1] == nil then return end
  break_on_error = got[1] and true or false
  local old = breakpoints
  breakpoints = {}
  for i = 3, got.n, 4 do
    local line = got[i]
    local previous = old[line]
    breakpoints[line] = {
      condition = got[i + 1] ~= "" and got[i + 1] or nil,
      hit = got[i + 2] or 0,
      log = got[i + 3] ~= "" and got[i + 3] or nil,
      hits = previous and previous.hits or 0,
    }
  end
  if got[2] then dbg.request_pause() end
  arm_lines()
end

function dbg.sync() sync() end

function dbg.request_pause()
  if not mode then
    mode, stepping = "pause", true
    arm_lines()
  end
end

local function set_mode(command, line)
  mode, stepping, cursor_line = nil, false, nil
  if command == "in" or command == "over" or command == "out" or command == "pause" then
    mode, stepping = command, true
    step_co, step_depth, step_act = logical(co_running()), depth(), current_act
  elseif command == "cursor" and type(line) == "number" then
    mode, stepping, cursor_line, step_act = "cursor", true, line, current_act
  end
  arm_lines()
end

-- (From the driver.) Activation `id` runs from now on.
function dbg.enter(id)
  current_act = id
  sync() -- a pause asked meanwhile holds for this activation too
end

-- (From the driver.) Activation `id` ended: a step given to it is over.
function dbg.ended(id)
  if step_act == id and mode ~= "pause" then set_mode(nil) end
end

-- ------------------------------------------------------------ pausing

-- The expandable values of pauses are kept while any activation is paused.
local function forget_refs()
  if next(paused_by) == nil then refs, lists = {}, {} end
end

local function pause(reason, line, message, frames)
  local act = current_act
  paused_by[act] = { reason = reason, line = line, message = message, frames = frames }
  local command, arg = co_yield(WAIT, 0, line)
  paused_by[act] = nil
  forget_refs()
  set_mode(command, arg)
  sync()
end

-- Whether the step in progress ends at this line.
local function step_ends(line)
  if mode == "pause" then return true end -- whichever activation runs
  if current_act ~= step_act then return false end -- another activation's step
  if mode == "in" then return true end
  if mode == "cursor" then return line == cursor_line end
  local co = logical(co_running())
  if co ~= step_co then
    -- Left the coroutine the step began in (it yielded or ended): stop in
    -- whoever runs now; inside a coroutine it resumed: go on.
    return co_status(step_co) ~= "normal"
  end
  local d = depth() -- (script frames only: the engine's own do not count)
  if mode == "over" then return d <= step_depth end
  return d < step_depth -- "out"
end

local function interpolate(text, frame)
  return (s_gsub(text, "{(.-)}", function(expr)
    local ok, value = evaluate(expr, frame)
    if not ok then return "{" .. tostring(value) .. "}" end
    return type(value) == "string" and value or show(value)
  end))
end

local noted = {} -- lines where a pause was impossible, already said

local function on_line(line)
  if evaluating or paused_by[current_act] then return end
  local reason
  local bp = breakpoints[line]
  if bp then
    -- The hit count counts the hits whose condition holds.
    local frame
    local hit = true
    if bp.condition then
      frame = capture(1)[1]
      local ok, value = evaluate(bp.condition, frame)
      if not ok then
        output("breakpoint condition at line " .. line .. " failed: " .. tostring(value))
      end
      hit = ok and value ~= nil and value ~= false
    end
    if hit then
      bp.hits = bp.hits + 1
      hit = bp.hits >= bp.hit
    end
    if hit and bp.log then
      frame = frame or capture(1)[1]
      output(interpolate(bp.log, frame))
      hit = false
    end
    if hit then reason = "breakpoint" end
  end
  if not reason and stepping and step_ends(line) then
    reason = mode == "pause" and "pause" or "step"
  end
  if not reason then return end
  if not can_yield() then
    if not noted[line] then -- once a line: a loop there would repeat it
      noted[line] = true
      output("debugger: cannot pause at line " .. line ..
        " (inside a metamethod, an iterator or a callback of a C function)")
    end
    return
  end
  pause(reason, line, nil, capture())
end

-- The line function and the armed lines written into the script (see
-- debuglines.py), and the script's number of lines.
function dbg.D(line)
  return on_line(line)
end
dbg.armed = armed

function dbg.set_last_line(n)
  last_line = n
  arm_lines()
end

-- ------------------------------------------------------------ errors

local function error_text(e)
  if type(e) == "string" then return e end
  return "error object: " .. show(e)
end

-- An error is being raised with the stack intact (LuaJIT: in an error
-- handler), or its coroutine `co` died of it (Lua 5.1: a dead coroutine
-- keeps its stack): keep its frames for a pause on it.
function dbg.error_at(e, co)
  if not break_on_error or evaluating or paused_by[current_act] or e == LIMIT then return end
  pending_error = { message = error_text(e), frames = capture(nil, co) }
end

-- A protected call caught an error: pause on it, where the pcall returns.
function dbg.caught()
  local p = pending_error
  pending_error = nil
  if not p or not can_yield() then return end
  local line = p.frames[1] and p.frames[1].line
  pause("exception", line, p.message, p.frames)
end

-- ------------------------------------------------------------ the host's requests

local function frames_summary(p)
  local out = {}
  for i, frame in ipairs(p.frames) do out[i] = { name = frame.name, line = frame.line } end
  return { reason = p.reason, line = p.line, message = p.message or false, frames = out }
end

local ops = {}
local builtin

-- Insertion sort by name (the engine never uses table.sort: the script can replace it).
local function sort_pairs(list)
  for i = 2, #list do
    local item, j = list[i], i - 1
    while j >= 1 and list[j][1] > item[1] do
      list[j + 1] = list[j]
      j = j - 1
    end
    list[j + 1] = item
  end
end

function ops.stack(p) return frames_summary(p) end

function ops.scopes(p, index)
  local frame = p.frames[index]
  if not frame then return {} end
  local globals = {}
  local k, v = next(frame.env)
  while k ~= nil do
    if type(k) == "string" and builtin[k] ~= v then globals[#globals + 1] = { k, v } end
    k, v = next(frame.env, k)
  end
  sort_pairs(globals)
  return {
    { name = "Locals", ref = list_ref(frame.locals), count = #frame.locals },
    { name = "Upvalues", ref = list_ref(frame.upvalues), count = #frame.upvalues },
    { name = "Globals", ref = list_ref(globals), count = #globals },
  }
end

function ops.variables(_, ref, start, count)
  return children(ref, start or 0, count or 100)
end

function ops.evaluate(p, expr, index)
  local frame = p.frames[index or 1]
  if not frame then return { error = "no such frame" } end
  local ok, value = evaluate(expr, frame)
  if not ok then return { error = tostring(value) } end
  return variable(expr, value)
end

-- Activation `act` ended with an error that break_on_error keeps: pause on
-- it (no coroutine to resume: the host ends it on the next command, then
-- sends "release").
local function error_pause(act)
  local p = pending_error
  pending_error = nil
  if not p then return false end
  p = { reason = "exception", line = p.frames[1] and p.frames[1].line,
    message = p.message, frames = p.frames }
  paused_by[act] = p
  return frames_summary(p)
end

-- A request of the host about the pause of activation `act`.
function dbg.request(op, act, ...)
  if op == "error_pause" then return error_pause(act) end
  if op == "release" then
    paused_by[act] = nil
    forget_refs()
    return true
  end
  local p = paused_by[act]
  if not p then return { error = "not paused" } end
  local fn = ops[op]
  if not fn then return { error = "unknown request" } end
  return fn(p, ...)
end

-- The environment's own names (shown among a frame's globals only when the
-- script changed them).
builtin = {}
for k, v in pairs(core.env) do builtin[k] = v end

-- The first breakpoints and options, before the first line runs.
sync()

return dbg
