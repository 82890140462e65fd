"""Django permissions for editing devices.

Devices live in MongoDB, not in the Django database; this model has no table
(``managed = False``) and exists only to own the permissions that the REST
API checks: ``devices.delete_device`` and ``devices.change_device_alias``.
Roles (Django groups) are given them by the IDE's role table.
"""

from django.db import models


class Device(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("delete_device", "Can delete devices"),
            ("change_device_alias", "Can rename devices (alias)"),
        ]
