"""The HTTP API (FastAPI): internal job endpoints, health checks."""
