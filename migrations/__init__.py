"""Alembic migrations of the modelshelf catalog, installed as ``registry._migrations``."""
