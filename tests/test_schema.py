"""The typed models and the Alembic migrations describe the same schema."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Engine

from scope3lib import db
from scope3lib.models import Base

pytestmark = pytest.mark.db


def test_models_match_migrations(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrations_step_down_to_the_foundation_and_back(server_admin_url: str) -> None:
    """Every migration after the foundation undoes itself (an operator's way back from a failed upgrade), and
    upgrading again gives the schema the models describe."""
    from alembic import command

    from scope3lib import schema
    from tests.conftest import _create_database, _drop_database

    name, url = _create_database(server_admin_url)
    try:
        engine = db.create_engine(url)
        schema.upgrade(engine)
        cfg = schema.alembic_config()
        while schema.current_revision(engine) != "0001":
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.downgrade(cfg, "-1")
        schema.upgrade(engine)
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        engine.dispose()
    finally:
        _drop_database(server_admin_url, name)
