"""Device simulators that speak the real protocols over real sockets.

- ``cwmp_cpe`` (+ ``datamodel``): TR-069 CPEs, many per process, with TR-098
  and TR-181 parameter trees.
- ``usp_agent`` (+ ``usp_requests``, ``tr181``, ``usp_fleet``): TR-369 agents.

``python manage.py simulate --cwmp N --usp M`` starts a fleet.
"""
