"""JSON API routers (OpenAPI at ``/openapi.json``)."""
