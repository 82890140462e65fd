from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "oktoscripts.runs"
    label = "runs"
    verbose_name = "Runs"
