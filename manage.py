#!/usr/bin/env python
"""Django's command-line utility for oktoscripts (``python manage.py up`` starts everything)."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oktoscripts.settings")
    from oktoscripts import appset
    from oktoscripts.config import ConfigError

    appset.select_for_command(sys.argv)  # before Django reads the settings

    try:
        from django.core.management import execute_from_command_line

        execute_from_command_line(sys.argv)
    except ConfigError as exc:
        # A wrong setting is the user's to fix: one line, no traceback.
        print(f"oktoscripts: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
