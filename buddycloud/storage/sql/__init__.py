"""The SQL backends of the storage contract: SQLite (embedded default) and PostgreSQL.

Written once with SQLAlchemy Core; the few dialect differences (full-text search, upserts,
group commit on SQLite) live next to each other in this package.
"""
