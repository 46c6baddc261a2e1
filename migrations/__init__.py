"""kdreg's Alembic migrations, shipped in the wheel as ``kdreg_migrations``."""
