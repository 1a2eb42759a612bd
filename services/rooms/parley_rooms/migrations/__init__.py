"""Alembic migrations of the rooms database (a package so that installs ship it)."""
