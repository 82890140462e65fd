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
  resume_nested, raw_getmetatable, raw_rawget, raw_setmetatable,
  raw_pcall, LIMIT, is_memory_error, output, PROXY, ud_getfenv, ud_setfenv, script_where,
  engine_state,
  --{{ luajit
  raw_xpcall, engine_place, s_find, floor,
  --}}
  _ = ...
-- (The runtime's own, not the script's, which are in `env`.)
local raw_newproxy, pairs, rawequal, tonumber = newproxy, pairs, rawequal, tonumber

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
-- The script never holds a metatable the collector reads: the userdata of
-- newproxy(true) share one metatable of the engine's, and the table the
-- script gets from getmetatable (see sandbox.lua) is the proxy's own, a
-- plain table kept as the userdata's environment. The shared metatable
-- answers every event by doing what the proxy's own says (or raising Lua's
-- error when it has nothing for it; only the message lacks the variable's
-- name: "attempt to index a userdata value").
--
-- Its __gc queues the object with the finalizer its own metatable has when
-- it is collected, if any; the queued finalizers run, in a coroutine and
-- within the run's limits, at the next limit check or the next newproxy
-- call, whichever comes first (a script making proxies in a loop gets its
-- finalizers run as it goes, so their objects do not pile up between
-- checks: that made each collection longer than the last). Those still
-- queued, or whose objects are still alive, when the run ends never run
-- (nor do they in gopher-lua, which has no finalizers).
--
-- A proxy costs what a bare one does: a userdata and one table. The
-- previous design, a stand-in table per proxy whose own metatable was a
-- real one, cost bench.engine's finalizer row 1,165 million instructions
-- against 788 bare (966 now). Every proxy is finalized, even one whose
-- metatable never gets a __gc (a call when it dies, and one more collection
-- to free it): a proxy could change to a finalized metatable only when the
-- script first takes its metatable, but nearly every proxy's is taken, and
-- that change cost the finalizer row another 67 million.
local queued, queued_fn, queued_n, done_n = {}, {}, 0, 0
local run_finalizers
local TEMPLATE, SHARED -- a proxy of the shared metatable, and the metatable

local function collect_later(object)
  local fn = raw_rawget(ud_getfenv(object), "__gc")
  if fn then
    queued_n = queued_n + 1
    queued[queued_n], queued_fn[queued_n] = object, fn
  end
end

-- The script's metatable of any value (a proxy's own).
local function metatable_of(value)
  local mt = raw_getmetatable(value)
  if mt == SHARED then return ud_getfenv(value) end
  return mt
end

local function handler_of(value, event)
  local mt = metatable_of(value)
  if mt == nil then return nil end
  return raw_rawget(mt, event)
end

-- Lua's errors for operands with no metamethod name the first operand
-- that cannot take part (on its own) in the operation.
local function arithmetic_error(a, b)
  local bad = a
  if tonumber(a) ~= nil then bad = b end
  error("attempt to perform arithmetic on a " .. type(bad) .. " value", 3)
end

local function concat_error(a, b)
  local bad = a
  if type(a) == "string" or type(a) == "number" then bad = b end
  error("attempt to concatenate a " .. type(bad) .. " value", 3)
end

-- Arithmetic and `..`: the first operand's metamethod, else the second's.
local function binary(event, fail)
  return function(a, b)
    local h = handler_of(a, event)
    if h == nil then h = handler_of(b, event) end
    if h == nil then fail(a, b) end
    return h(a, b)
  end
end

-- Comparisons: Lua calls a metamethod only when both operands have the
-- same one.
local function common_handler(a, b, event)
  local mt_a, mt_b = metatable_of(a), metatable_of(b)
  local h = mt_a and raw_rawget(mt_a, event)
  if h == nil or rawequal(mt_a, mt_b) then return h end
  local other = mt_b and raw_rawget(mt_b, event)
  if rawequal(h, other) then return h end
  return nil
end

local function read_handler(proxy, event, what)
  local h = raw_rawget(ud_getfenv(proxy), event)
  if h == nil then error("attempt to " .. what .. " a userdata value", 3) end
  return h
end

local ARITHMETIC = { "__add", "__sub", "__mul", "__div", "__mod", "__pow" }

-- Handlers are tail calls, so that the errors they raise name the script's
-- frame that used the proxy (on LuaJIT; Lua 5.1 counts a tail call as a level).
local function shared_handlers()
  local mt = {
    __index = function(proxy, key)
      local h = read_handler(proxy, "__index", "index")
      if type(h) == "function" then return h(proxy, key) end
      return h[key]
    end,
    __newindex = function(proxy, key, value)
      local h = read_handler(proxy, "__newindex", "index")
      if type(h) == "function" then return h(proxy, key, value) end
      h[key] = value
    end,
    __call = function(proxy, ...)
      local h = raw_rawget(ud_getfenv(proxy), "__call")
      if type(h) ~= "function" then error("attempt to call a userdata value", 2) end
      return h(proxy, ...)
    end,
    __len = function(proxy, other)
      return read_handler(proxy, "__len", "get length of")(proxy, other)
    end,
    __unm = function(proxy, other)
      return read_handler(proxy, "__unm", "perform arithmetic on")(proxy, other)
    end,
    __concat = binary("__concat", concat_error),
    __eq = function(a, b)
      local h = common_handler(a, b, "__eq")
      if h == nil then return false end
      return h(a, b)
    end,
    __lt = function(a, b)
      local h = common_handler(a, b, "__lt")
      if h == nil then error("attempt to compare two userdata values", 2) end
      return h(a, b)
    end,
    __le = function(a, b)
      local h = common_handler(a, b, "__le")
      if h ~= nil then return h(a, b) end
      h = common_handler(b, a, "__lt")
      if h == nil then error("attempt to compare two userdata values", 2) end
      return not h(b, a)
    end,
    __tostring = function(proxy)
      local h = raw_rawget(ud_getfenv(proxy), "__tostring")
      if h ~= nil then return h(proxy) end
      -- Lua's own text ("userdata: 0x..."), of the userdata without a
      -- metatable for a moment (making the string may fail: out of memory).
      raw_setmetatable(proxy, nil)
      local ok, text = raw_pcall(tostring, proxy)
      raw_setmetatable(proxy, SHARED)
      if not ok then error(text, 0) end
      return text
    end,
  }
  for _, event in ipairs(ARITHMETIC) do mt[event] = binary(event, arithmetic_error) end
  return mt
end

-- The shared metatable, made with the first proxy. newproxy(TEMPLATE)
-- makes a userdata with it (the C function accepts only metatables it made
-- itself). TEMPLATE's environment is the engine's globals, with no __gc.
local function make_shared_metatable()
  TEMPLATE = raw_newproxy(true)
  SHARED = raw_getmetatable(TEMPLATE)
  for event, fn in pairs(shared_handlers()) do SHARED[event] = fn end
  SHARED.__metatable = PROXY
  SHARED.__gc = collect_later
end

function more.newproxy(arg)
  if done_n < queued_n then run_finalizers() end
  local own
  if arg == true then
    own = {}
  elseif SHARED and type(arg) == "userdata" and raw_getmetatable(arg) == SHARED then
    own = ud_getfenv(arg) -- newproxy(p): a proxy with p's metatable
  elseif arg == nil or arg == false then
    return raw_newproxy(false)
  else
    -- (The C function's error would name no line under Lua 5.1.)
    error(script_where() .. "bad argument #1 to 'newproxy' (boolean or proxy expected)", 0)
  end
  if SHARED == nil then make_shared_metatable() end
  local object = raw_newproxy(TEMPLATE)
  ud_setfenv(object, own)
  return object
end

-- The body of the coroutine that runs the queue. A finalizer's error ends
-- the coroutine (no pcall per finalizer: most never fail); run_queue
-- reports it, goes on with the next one in a new coroutine, and empties
-- the queue once all have run.
local function finalize_queued()
  while done_n < queued_n do
    done_n = done_n + 1
    local object, fn = queued[done_n], queued_fn[done_n]
    queued[done_n], queued_fn[done_n] = nil, nil
    fn(object)
  end
end

local finalizing = false

local function run_queue()
  while done_n < queued_n do
    local co = new_coroutine(finalize_queued)
    local res = resume_nested(co)
    if not res[1] then
      local err = res[2]
      if err == LIMIT or tripped() or is_memory_error(err) then
        check_limit(err)
        error(err, 0)
      end
      report_finalizer_error(err)
    elseif co_status(co) ~= "dead" then
      report_finalizer_error("a finalizer cannot wait or yield")
    end
  end
  queued_n, done_n = 0, 0
end

function run_finalizers()
  if done_n >= queued_n or finalizing or hooking() then return end
  finalizing = true
  local ok, err = raw_pcall(run_queue)
  finalizing = false
  if not ok then error(err, 0) end
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
