"""Mercado Livre: OAuth, the API client, and the sync job."""
