"""Alembic environment for the modelshelf catalog.

Two callers use it:

* the library (``registry.catalog.migrate``), which passes its own open
  connection in ``config.attributes["connection"]`` and must not have the
  host application's logging reconfigured;
* developers running ``alembic`` from the repository root with
  ``alembic.ini`` (``alembic revision --autogenerate``, ``alembic check``),
  where the URL comes from ``-x url=…``, ``$MODELSHELF_CATALOG`` or the ini file.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine

from registry.catalog.schema import Base, compare_exact_types

config = context.config
target_metadata = Base.metadata


def _configure(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=compare_exact_types,  # Alembic's own comparison, plus the collation of exact columns
    )


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    if config.config_file_name is not None and not config.attributes.get("modelshelf_library"):
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or os.environ.get("MODELSHELF_CATALOG")
        or config.get_main_option("sqlalchemy.url")
    )
    engine = create_engine(url)
    with engine.connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
