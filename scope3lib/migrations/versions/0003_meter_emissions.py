"""Meter emissions: one daily entry per device, revoked devices, broker service accounts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

* ``uq_emission_entries_device_day``: at most one ``iot`` entry per tenant, device and day, so the
  daily rollup (``scope3lib.meters.rollup``) upserts and re-running it never double counts.
* ``devices.revoked_at``: a removed device whose readings already fed emission entries is kept
  (the inventory must stay reproducible) but loses its broker account at once; the ingest service
  refuses its messages.
* ``readings`` loses its plain foreign key to ``tenants``: the composite key to ``devices (tenant_id,
  id)`` already guarantees the tenant (and deleting a tenant still cascades through its devices), and
  the second per-row check cost a quarter of the ingest's insert rate (measured: COPY into readings
  86k rows/s with both keys, 120k with the device key alone).
* ``broker_accounts``: the MQTT accounts of services (the ingest service), hashed in Mosquitto's
  ``$7$`` format like devices' credentials, so the broker's password file is written entirely from
  this database. Not tenant-owned; only the admin role reads it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from scope3lib.schema import group_role, ingest_role, role_prefix

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("devices", sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    op.drop_constraint("fk_readings_tenant_id_tenants", "readings", type_="foreignkey")
    op.create_index(
        "uq_emission_entries_device_day",
        "emission_entries",
        ["tenant_id", "device_id", "period_start"],
        unique=True,
        postgresql_where=sa.text("data_source = 'iot' AND device_id IS NOT NULL"),
    )
    op.create_table(
        "broker_accounts",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("credential_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("role IN ('ingest')", name=op.f("ck_broker_accounts_role")),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_broker_accounts")),
    )
    conn = op.get_bind()
    prefix = role_prefix(conn)
    rw, ro, ingest = group_role(prefix, "rw"), group_role(prefix, "ro"), ingest_role(prefix)
    # Tenants see whether their device was revoked; the ingest service refuses revoked devices.
    op.execute(f'GRANT SELECT (revoked_at) ON devices TO "{rw}", "{ro}", "{ingest}"')


def downgrade() -> None:
    op.drop_table("broker_accounts")
    op.drop_index("uq_emission_entries_device_day", table_name="emission_entries")
    op.drop_column("devices", "revoked_at")
    op.create_foreign_key("fk_readings_tenant_id_tenants", "readings", "tenants", ["tenant_id"], ["id"],
                          ondelete="CASCADE")
