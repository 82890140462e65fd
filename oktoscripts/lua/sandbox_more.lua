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
-- Arguments: what the engine shares with this chunk, in the order below (its captured
-- locals: the script cannot have changed them). Returns the functions by name.

local type, error, tostring, unpack, pack, co_yield, co_status, co_running, getinfo,
  raw_getfenv, raw_setfenv, s_byte, s_sub, t_concat, gc, ipairs, new_coroutine, check_limit,
  logical, drivers, is_script_source, compile_text, env, WAIT, script_frames, parent_of,
  resume_nested, raw_getmetatable, raw_rawget, raw_rawset, raw_setmetatable, setmetatable,
  raw_pcall, LIMIT, is_memory_error, output, engine_state,
  --{{ luajit
  raw_xpcall, engine_place, script_where, s_find, floor,
  --}}
  _ = ...
-- (The runtime's own, not the script's, which are in `env`.)
local raw_newproxy, getmetatable = newproxy, getmetatable

-- engine_state(finalizers) sets the engine's finalizer runner (when given)
-- and returns failed_co, tripped and hooking as they are now.
local function failed_co() return (engine_state()) end
local function tripped()
  local _, now = engine_state()
  return now
end
local function hooking()
  local _, _, now = engine_state()
  return now
end
local more = {}

-- A finalizer's error goes to the run's output: the collector, not the
-- script, called it.
local function report_finalizer_error(err)
  local text = type(err) == "string" and err or "error object: " .. type(err)
  output("error in __gc finalizer: " .. text)
end

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

-- ------------------------------------------------------------ newproxy and finalizers
-- The script never holds the real metatable of a proxy: getmetatable gives a
-- stand-in, a table whose own metatable is the real one, and whose reads
-- and writes go to the real one through the real one's __index and
-- __newindex (meta_index and meta_newindex below), except for three keys:
-- the script's __gc, __index and __newindex stay in the stand-in itself
-- (the engine's are in the real one), and meta_index and meta_newindex do
-- on a proxy what the script's __index and __newindex would. Its
-- __metatable goes to the real one, except that nil puts the stand-in back
-- (else getmetatable would give the real one from then on).
--
-- The real __gc only queues the object; the queued finalizers run, in a
-- coroutine and within the run's limits, at the next limit check or the
-- next newproxy call, whichever comes first (a script making proxies in a
-- loop gets its finalizers run as it goes, so their objects do not pile up
-- between checks: that made each collection longer than the last). Those
-- still queued, or whose objects are still alive, when the run ends never
-- run (nor do they in gopher-lua, which has no finalizers).
--
-- A proxy costs one small table more than a bare one (the stand-in); a
-- stand-in with a metatable of its own, pointing at the real one, cost the
-- finalizer row of bench.engine 29% more instructions. The price: the
-- stand-in answers to the script's other metamethods too (tostring of it
-- calls the script's __tostring, with the stand-in as its argument). Both
-- tables are made with room for the keys the engine puts there, so that
-- none of them grows them. The real __gc is collect_later from the first
-- time the script sets one: until then the collector frees the proxies of
-- that metatable as it frees any userdata (finalizing each of them, a
-- function call at its death and a second collection to free it, tripled
-- the cost of making proxies that never get a finalizer).
local STAND_IN = {} -- in a real metatable whose __metatable the script set
local queued, queued_fn, queued_n, done_n = {}, {}, 0, 0
local run_finalizers
local meta_index, meta_newindex

local function stand_in_of(real)
  return raw_rawget(real, STAND_IN) or raw_rawget(real, "__metatable")
end

-- The real __gc. While the script has not set __metatable, getmetatable
-- (which the JIT compiles, unlike debug.getmetatable, a C call) gives the
-- stand-in: the collector calls this for every finalized proxy.
local function collect_later(object, stand_in)
  local fn = raw_rawget(stand_in or getmetatable(object), "__gc")
  if fn then
    queued_n = queued_n + 1
    queued[queued_n], queued_fn[queued_n] = object, fn
  end
end

local function collect_later_locked(object)
  collect_later(object, stand_in_of(raw_getmetatable(object)))
end

-- The keys whose script values stay in the stand-in itself (read and
-- written without these functions once set).
local OWN_KEYS = { __gc = true, __index = true, __newindex = true }

local function stand_in_read(stand_in, real, key)
  if OWN_KEYS[key] then return nil end
  local value = raw_rawget(real, key)
  if key == "__metatable" and value == stand_in then return nil end
  return value
end

local function stand_in_write(stand_in, real, key, value)
  if OWN_KEYS[key] then
    if key == "__gc" and value ~= nil and raw_rawget(real, "__gc") == nil then
      -- The first finalizer: from now on the collector finalizes the proxies
      -- of this metatable. Lua 5.1 and LuaJIT look __gc up when a userdata
      -- dies, not when its metatable is set; adding the key clears their
      -- cache of the metamethods a metatable lacks. It stays once set.
      raw_rawset(real, "__gc", raw_rawget(real, STAND_IN) and collect_later_locked or collect_later)
    end
    raw_rawset(stand_in, key, value)
    return
  end
  if key == "__metatable" then
    if value == nil then
      value = stand_in
    elseif raw_rawget(real, STAND_IN) == nil then
      raw_rawset(real, STAND_IN, stand_in)
      if raw_rawget(real, "__gc") then raw_rawset(real, "__gc", collect_later_locked) end
    end
  end
  raw_rawset(real, key, value)
end

-- The only table whose metatable is a real one is its stand-in; otherwise
-- `object` is one of the proxies of that metatable. Their errors name the
-- script's frame that indexed the proxy, and handlers are tail calls, so
-- that theirs do too (on LuaJIT; Lua 5.1 counts a tail call as a level).
function meta_index(object, key)
  local real = raw_getmetatable(object)
  if type(object) == "table" then return stand_in_read(object, real, key) end
  local handler = raw_rawget(stand_in_of(real), "__index")
  if handler == nil then error("attempt to index a userdata value", 2) end
  if type(handler) == "function" then return handler(object, key) end
  return handler[key]
end

function meta_newindex(object, key, value)
  local real = raw_getmetatable(object)
  if type(object) == "table" then return stand_in_write(object, real, key, value) end
  local handler = raw_rawget(stand_in_of(real), "__newindex")
  if handler == nil then error("attempt to index a userdata value", 2) end
  if type(handler) == "function" then return handler(object, key, value) end
  handler[key] = value
end

-- A proxy of ours: a userdata whose real metatable has our __index.
local function real_of(object)
  if type(object) ~= "userdata" then return nil end
  local real = raw_getmetatable(object)
  if real and raw_rawget(real, "__index") == meta_index then return real end
  return nil
end

function more.newproxy(arg)
  if done_n < queued_n then run_finalizers() end
  local object
  if arg == true then
    object = raw_newproxy(false)
    -- (The slots made first: setting __gc later does not grow either table.)
    local real = { __metatable = false, __index = meta_index, __newindex = meta_newindex, __gc = false }
    local stand_in = { __gc = false }
    real.__gc, stand_in.__gc = nil, nil
    real.__metatable = setmetatable(stand_in, real)
    raw_setmetatable(object, real)
  else
    -- newproxy(p) shares p's metatable; the C function knows only the
    -- metatables it made itself (and gives its own error for anything else).
    local real = real_of(arg)
    if not real then return raw_newproxy(arg) end
    object = raw_newproxy(false)
    raw_setmetatable(object, real)
  end
  return object
end

-- The body of the coroutine that runs the queue.
local function finalize_queued()
  while done_n < queued_n do
    done_n = done_n + 1
    local object, fn = queued[done_n], queued_fn[done_n]
    queued[done_n], queued_fn[done_n] = nil, nil
    local ok, err = raw_pcall(fn, object)
    if not ok then
      if err == LIMIT or tripped() or is_memory_error(err) then error(err, 0) end
      report_finalizer_error(err)
    end
  end
  queued_n, done_n = 0, 0
end

local finalizing = false

function run_finalizers()
  if done_n >= queued_n or finalizing or hooking() then return end
  finalizing = true
  while done_n < queued_n do
    local co = new_coroutine(finalize_queued)
    local res = resume_nested(co)
    if not res[1] then
      finalizing = false
      check_limit(res[2])
      error(res[2], 0)
    end
    if co_status(co) ~= "dead" then
      report_finalizer_error("a finalizer cannot wait or yield")
    end
  end
  finalizing = false
end
engine_state(run_finalizers)

--{{ luajit
-- table.sort in Lua: LuaJIT compiles it with the comparator inlined, where
-- the C sort calls the comparator through the C API, uncompiled, each time
-- (a million-element sort with a comparator: 1.7 s, a third of that in
-- Lua), and nests no C level. The algorithm is Lua's own quicksort (median
-- of three, smaller part first), with a heap sort past a depth of
-- 2 log2(n), so that no comparator, however inconsistent, makes it run for
-- longer than n log n comparisons; an input already in order, or in reverse
-- order, takes one pass.
local function less(a, b) return a < b end

local function bad_order()
  error("invalid order function for sorting", 0)
end

local function insertion_sort(t, lo, hi, comp)
  for i = lo + 1, hi do
    local v = t[i]
    local j = i - 1
    while j >= lo and comp(v, t[j]) do
      t[j + 1] = t[j]
      j = j - 1
    end
    t[j + 1] = v
  end
end

local function sift_down(t, lo, root, size, comp)
  while true do
    local child = 2 * root
    if child > size then return end
    if child < size and comp(t[lo + child - 1], t[lo + child]) then child = child + 1 end
    if not comp(t[lo + root - 1], t[lo + child - 1]) then return end
    t[lo + root - 1], t[lo + child - 1] = t[lo + child - 1], t[lo + root - 1]
    root = child
  end
end

local function heap_sort(t, lo, hi, comp)
  local size = hi - lo + 1
  for root = floor(size / 2), 1, -1 do sift_down(t, lo, root, size, comp) end
  for last = size, 2, -1 do
    t[lo], t[lo + last - 1] = t[lo + last - 1], t[lo]
    sift_down(t, lo, 1, last - 1, comp)
  end
end

local function quick_sort(t, lo, hi, comp, depth)
  while hi - lo > 10 do
    if depth == 0 then return heap_sort(t, lo, hi, comp) end
    depth = depth - 1
    local mid = floor((lo + hi) / 2)
    if comp(t[mid], t[lo]) then t[mid], t[lo] = t[lo], t[mid] end
    if comp(t[hi], t[mid]) then
      t[hi], t[mid] = t[mid], t[hi]
      if comp(t[mid], t[lo]) then t[mid], t[lo] = t[lo], t[mid] end
    end
    local pivot = t[mid]
    t[mid], t[hi - 1] = t[hi - 1], t[mid]
    local i, j = lo, hi - 1
    while true do
      i = i + 1
      while comp(t[i], pivot) do
        if i >= hi then bad_order() end
        i = i + 1
      end
      j = j - 1
      while comp(pivot, t[j]) do
        if j <= lo then bad_order() end
        j = j - 1
      end
      if j < i then break end
      t[i], t[j] = t[j], t[i]
    end
    t[hi - 1], t[i] = t[i], t[hi - 1]
    if i - lo < hi - i then
      quick_sort(t, lo, i - 1, comp, depth)
      lo = i + 1
    else
      quick_sort(t, i + 1, hi, comp, depth)
      hi = i - 1
    end
  end
  insertion_sort(t, lo, hi, comp)
end

local function sort(t, comp)
  local n = #t
  if n < 2 then return end
  local i = 2
  while i <= n and not comp(t[i], t[i - 1]) do i = i + 1 end
  if i > n then return end -- in order already
  if i == 2 then
    while i <= n and comp(t[i], t[i - 1]) do i = i + 1 end
    if i > n then -- in reverse order: reversed
      for k = 1, floor(n / 2) do t[k], t[n + 1 - k] = t[n + 1 - k], t[k] end
      return
    end
  end
  local depth = 2
  while 2 ^ (depth / 2) < n do depth = depth + 2 end
  quick_sort(t, 1, n, comp, depth)
end

-- An error of the engine's own code (comparing values that Lua cannot
-- compare, an invalid order function) is placed at the script's call.
local function sort_error(e)
  if e == "invalid order function for sorting" then return script_where() .. e end
  return engine_place(e)
end

function more.sort(t, comp)
  if type(t) ~= "table" then
    error("bad argument #1 to 'sort' (table expected, got " .. type(t) .. ")", 3)
  end
  if comp == nil then
    comp = less
  elseif type(comp) ~= "function" then
    error("bad argument #2 to 'sort' (function expected, got " .. type(comp) .. ")", 3)
  end
  local ok, err = raw_xpcall(sort, sort_error, t, comp)
  if not ok then error(err, 0) end
end
--}}

return more
