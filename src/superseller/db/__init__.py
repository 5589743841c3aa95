"""Database layer: schema, engine, migrations. Everything else builds on it."""
