"""The sync service's store: typed models, migrations and repositories (SQL only)."""
