"""Alembic migrations of the sql backend (applied by ``dspex store migrate`` or ``open()``)."""
