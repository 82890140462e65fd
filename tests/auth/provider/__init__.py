"""A real OpenID Provider for the sign-on tests: django-oauth-toolkit with
OpenID Connect on, run by ``tests/auth/provider_process.py`` as its own HTTP
server (its own Django settings and database), never inside the test process.
Its people and their groups are Django users and groups of its own database.
"""
