"""The Lua API: the functions scripts call, one module per domain.

Importing this package registers every function into the engine's registry
(``oktoscripts.lua.binding``). The engine never imports it: the processes that
run or check scripts (the worker, ``runscript``, the IDE) do, before their
first run. Domains: util, devices, cwmp, usp (listeners are in devices and
cwmp).
"""

from oktoscripts.bindings import cwmp, devices, usp, util  # noqa: F401 - they register
from oktoscripts.lua.binding import all_bindings

__all__ = ["all_bindings"]
