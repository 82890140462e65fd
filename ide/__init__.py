"""The browser IDE: scripts, versions, runs, devices, roles and the REST API."""
