"""The Lua API: the binding registry and one module per domain.

Domains: devices, usp, cwmp, events, util.
"""
