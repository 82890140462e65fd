"""The REST API: one route table (ide/api/routes.py) gives the URLs and the OpenAPI schema."""
