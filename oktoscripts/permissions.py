"""The Django permissions that guard changes: one set of names for the REST
API, the pages and the Lua bindings, so a role may do the same in each.

The ``scripts.*`` names are the role capabilities (oktoscripts/roles.py); the
``devices.*`` ones belong to oktoscripts/devices/models.py.
"""

RUN_SCRIPTS = "scripts.run_scripts"  # start, re-run and cancel runs; configure automations
ADMINISTER = "scripts.administer"  # users, roles, device credentials, settings, audit log
DELETE_DEVICE = "devices.delete_device"
CHANGE_DEVICE_ALIAS = "devices.change_device_alias"
