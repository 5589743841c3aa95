"""The seller's web pages (server-rendered Jinja2, Brazilian Portuguese)."""
