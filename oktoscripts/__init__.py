"""oktoscripts: a browser IDE and execution platform for Lua device-management scripts."""
