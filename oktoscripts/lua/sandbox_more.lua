-- The parts of the sandbox that few scripts use: the coroutine library,
-- getfenv/setfenv, loadstring/load, collectgarbage and debug.traceback. A runtime is made for
-- every run and thousands may be alive at once, so these are not part of
-- every runtime: the engine (sandbox.lua) loads this chunk, also as
-- "=(engine)", the first time a script calls one of them.
--
-- Each function here is called by a stub of the engine, one frame above the
-- script: error levels and stack levels are one more than they would be in a
-- function the script calls directly.
--
-- Argument: a table of what the engine shares with this chunk (its captured
-- locals: the script cannot have changed them). Returns the functions by name.

local core = ...
local type, error, tostring, unpack, pack = core.type, core.error, core.tostring, core.unpack,
  core.pack
local co_yield, co_status, co_running = core.co_yield,
  core.co_status, core.co_running
local getinfo, raw_getfenv, raw_setfenv = core.getinfo, core.raw_getfenv, core.raw_setfenv
local s_byte, s_sub, t_concat, gc = core.s_byte, core.s_sub, core.t_concat, core.gc
local ipairs = core.ipairs
local new_coroutine, check_limit, logical, drivers = core.new_coroutine, core.check_limit,
  core.logical, core.drivers
local is_script_source, compile_text, env, WAIT = core.is_script_source, core.compile_text,
  core.env, core.WAIT
local script_frames, parent_of, failed_co = core.script_frames, core.parent_of, core.failed_co
local resume_nested = core.resume_nested

local more = {}

-- ------------------------------------------------------------ coroutines

-- Resume `co` and carry every waiting-binding request it yields up to our own
-- resumer (and eventually the driver), then back down with the answer.
local function resume_through(co, ...)
  local res = resume_nested(co, ...)
  while res[1] and res[2] == WAIT and co_status(co) == "suspended" do
    res = resume_nested(co, co_yield(unpack(res, 2, res.n)))
  end
  return res
end

local function create(f, level)
  if type(f) ~= "function" then
    error("bad argument #1 to 'create' (Lua function expected)", level)
  end
  return new_coroutine(f)
end

function more.create(f)
  local co = create(f, 4) -- not a tail call: the level counts this frame
  return co
end

function more.resume(co, ...)
  if type(co) ~= "thread" then
    error("bad argument #1 to 'resume' (coroutine expected)", 3)
  end
  local res = resume_through(co, ...)
  if not res[1] then check_limit(res[2]) end
  return unpack(res, 1, res.n)
end

function more.wrap(f)
  local co = create(f, 3)
  -- Called by the script itself, not through a stub.
  return function(...)
    local res = resume_through(co, ...)
    if res[1] then return unpack(res, 2, res.n) end
    check_limit(res[2])
    if type(res[2]) == "string" then error(res[2], 2) end
    error(res[2], 0)
  end
end

function more.yield(...)
  if drivers[logical(co_running())] then
    error("attempt to yield from outside a coroutine", 3)
  end
  return co_yield(...)
end

function more.running()
  local co = logical(co_running())
  if drivers[co] then return nil end
  return co
end

function more.status(co)
  if type(co) ~= "thread" then
    error("bad argument #1 to 'status' (coroutine expected)", 3)
  end
  if co == logical(co_running()) then return "running" end
  return co_status(co)
end

-- ------------------------------------------------------------ collectgarbage

function more.collectgarbage(opt)
  if opt == "count" then return gc("count") end
  error("collectgarbage: only collectgarbage(\"count\") is available to scripts", 3)
end

-- ------------------------------------------------------------ getfenv / setfenv
-- They reach only functions of the script.

local function is_script_function(f)
  if type(f) ~= "function" then return false end
  local info = getinfo(f, "S")
  return info.what ~= "C" and is_script_source(info.source)
end

-- Level 1 is the function that called getfenv or setfenv: here, that is 4
-- (function_at, the function below, the engine's stub, the caller).
local function function_at(f, fname)
  if f == nil then f = 1 end
  if type(f) == "number" then
    if f < 0 then error("bad argument #1 to '" .. fname .. "' (level must be non-negative)", 4) end
    if f == 0 then return nil end
    local info = getinfo(f + 3, "f")
    if not info then error("bad argument #1 to '" .. fname .. "' (invalid level)", 4) end
    return info.func
  end
  if type(f) ~= "function" then
    error("bad argument #1 to '" .. fname .. "' (number expected, got " .. type(f) .. ")", 4)
  end
  return f
end

function more.getfenv(f)
  local fn = function_at(f, "getfenv")
  if fn == nil or not is_script_function(fn) then return env end
  return raw_getfenv(fn)
end

function more.setfenv(f, t)
  if type(t) ~= "table" then
    error("bad argument #2 to 'setfenv' (table expected, got " .. type(t) .. ")", 3)
  end
  local fn = function_at(f, "setfenv")
  if fn == nil or not is_script_function(fn) then
    error("'setfenv' cannot change the environment of this function", 3)
  end
  raw_setfenv(fn, t)
  return fn
end

-- ------------------------------------------------------------ loadstring / load
-- Of source text only: bytecode could break the VM.

local function load_text(text, chunkname)
  if s_byte(text, 1) == 27 then
    return nil, "loading precompiled chunks is not allowed"
  end
  return compile_text(text, chunkname)
end

function more.loadstring(text, chunkname)
  if type(text) ~= "string" and type(text) ~= "number" then
    error("bad argument #1 to 'loadstring' (string expected, got " .. type(text) .. ")", 3)
  end
  text = tostring(text)
  return load_text(text, chunkname or text)
end

function more.load(reader, chunkname)
  if type(reader) ~= "function" then
    error("bad argument #1 to 'load' (function expected, got " .. type(reader) .. ")", 3)
  end
  local parts = {}
  while true do
    local piece = reader()
    if piece == nil or piece == "" then break end
    if type(piece) ~= "string" then return nil, "reader function must return a string" end
    parts[#parts + 1] = piece
  end
  return load_text(t_concat(parts), chunkname or "=(load)")
end

-- ------------------------------------------------------------ debug.traceback
-- Of the script's frames only. Engine frames (this function, the stub) are
-- left out anyway; a level counts from the caller, one frame further here.

local function format_frames(frames, lines)
  for _, f in ipairs(frames) do
    lines[#lines + 1] = "\t" .. s_sub(f.source, 2) .. ":" .. f.line .. ": in " .. f.name
  end
end

function more.traceback(a, b, c)
  local co, msg, level = nil, a, b
  if type(a) == "thread" then co, msg, level = a, b, c end
  if msg ~= nil and type(msg) ~= "string" and type(msg) ~= "number" then return msg end
  local lines = {}
  if msg ~= nil then lines[1] = tostring(msg) end
  lines[#lines + 1] = "stack traceback:"
  if co then
    format_frames(script_frames(co, level or 0), lines)
  else
    local failed = failed_co()
    if failed then format_frames(script_frames(failed, 0), lines) end
    format_frames(script_frames(nil, (level or 2) + 1), lines)
    local parent = parent_of[co_running()]
    while parent do
      format_frames(script_frames(parent, 0), lines)
      parent = parent_of[parent]
    end
  end
  return t_concat(lines, "\n")
end

return more
