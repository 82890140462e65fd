from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "oktoscripts.accounts"
    label = "accounts"
    verbose_name = "Accounts and single sign-on"

    def ready(self) -> None:
        from oktoscripts.accounts import signin  # noqa: F401 - connects the audit receivers
