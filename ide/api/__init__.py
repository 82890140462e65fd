"""The REST API on django-ninja (app.py): a router per domain, schemas in schemas.py."""
