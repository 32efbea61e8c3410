"""Alembic environment: the catalog's models are the target metadata; the URL comes from the config.
On PostgreSQL the migration holds an advisory lock, so catalog replicas that start together migrate one
after the other (the later ones find the schema at head) instead of racing."""

from alembic import context
from sqlalchemy import create_engine, text

from emofactory.stages.catalog.db import Base

config = context.config
MIGRATION_LOCK = 0x656D6F66  # "emof": the advisory lock key of catalog migrations


def run() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            context.run_migrations()
    engine.dispose()


run()
