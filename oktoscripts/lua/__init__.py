"""The Lua engine: sandboxed Lua 5.1 runs driven as coroutines from asyncio.

Modules:

- ``run``       LuaRun, the coroutine driver: ``await LuaRun(source, ...).run()``
                gives a RunOutcome; ``cancel()`` from any thread.
- ``runtime``   LuaSandbox: one fresh lupa runtime per run (luajit by
                default, lua51 as the per-script option), nothing of Python
                registered, strings as bytes so every value crossing is
                converted by us (within the run's memory and result limits).
- ``sandbox.lua`` the engine side inside each runtime: the script's
                environment (docs/lua-api.md, "The sandbox"), the limit checks (a
                hook on every coroutine, or LuaJIT's instrumented counters),
                yieldable pcall/xpcall, the C nesting count, finalizers run
                at the limit checks, binding wrappers, the step function.
- ``sandbox_more.lua`` the sandbox functions few scripts use (coroutine
                library, getfenv/setfenv, load/loadstring, collectgarbage,
                debug.traceback), loaded into a runtime on first use.
- ``limits``    Limits and their per-script overrides.
- ``context``   RunContext (``ctx`` of bindings) and OutputLine.
- ``outcome``   RunOutcome and RunError.
- ``values``    Lua <-> Python/JSON conversion, LuaCallback.
- ``instrument`` budget checks written into LuaJIT scripts (loops, gotos,
                tail calls, calls), since compiled LuaJIT code never runs hooks.
- ``bytecode``  the engine chunk's Lua 5.1 bytecode without debug information.
- ``threads``   LuaThreadPool: where Lua runs, with abandon() for stuck calls;
                LoopInbox: results back to the asyncio loop, one wake-up for many.
- ``syntax``    check_syntax(source) for the editor.
- ``lint``      the editor's lint (owned by the IDE).
- ``debugger``  DebugSession: a debug run's breakpoints, commands and pauses;
                ``debugger.lua`` its side in the runtime (debug runs only),
                ``debuglines`` the line checks written into a debug run's script.
- ``binding``   the binding machinery (Binding, Param, the ``binding``
                decorator, argument checks) and the registry of declared
                bindings. The functions are implemented in one module per
                domain under ``oktoscripts.bindings``, which registers them
                here when imported; the engine never imports that package.

Script view: the chunk gets the run's arguments as its vararg ``...`` and as
the global ``args`` (one and the same table). Its returned value is the run's result
(several values give a list). ``print`` writes to the run output.
"""
