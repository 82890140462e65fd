"""Runs: the run queue, the worker that runs Lua, listeners and schedules."""
