"""Persistence: SQLAlchemy tables, one store per aggregate, Alembic migrations."""
