from django.apps import AppConfig


class ScriptsConfig(AppConfig):
    name = "oktoscripts.scripts"
    label = "scripts"
    verbose_name = "Scripts"
    default_auto_field = "django.db.models.BigAutoField"
