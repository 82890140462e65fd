"""The Lua API: the binding registry and one module per domain (devices, usp, cwmp, events, util)."""
