"""Scripts that run by themselves: schedules, bulk runs, event triggers and
deployed listeners (one module per concept; ``service.py`` drives them all
in the ``python manage.py scheduler`` process)."""
