from django.apps import AppConfig


class OktoscriptsConfig(AppConfig):
    name = "oktoscripts"
    verbose_name = "oktoscripts platform"
