from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    name = "oktoscripts.automations"
    label = "automations"
    verbose_name = "Automations"
    default_auto_field = "django.db.models.BigAutoField"
