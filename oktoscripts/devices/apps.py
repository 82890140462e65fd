from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "oktoscripts.devices"
    label = "devices"
    verbose_name = "Devices"
