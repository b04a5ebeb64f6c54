"""The integration API: tenant API keys, the request log, background jobs; HTTP meter ingest with tenant roles.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

The API service of a tenant connects with the tenant's own two roles (docs/isolation.md, the API
boundary), so every table here has the same row-level security as the other tenant tables, and the
read-write role gains what the HTTP meter ingest and the device endpoints write: readings and rejects
(as the ingest role does, limited to the tenant by RLS), a device's last_seen, credentials and
revocation. A key's secret is stored only as its SHA-256 (a 256-bit random secret needs no slow hash),
so reading ``api_keys`` reveals nothing that lets anyone in.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from scope3lib.schema import isolate_tenant_tables, tenant_groups

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("api_keys", "api_requests", "jobs")


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("device_id", sa.BigInteger(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("scope IN ('read', 'write', 'ingest')", name=op.f("ck_api_keys_scope")),
        sa.CheckConstraint("(scope = 'ingest') = (device_id IS NOT NULL)", name=op.f("ck_api_keys_device")),
        sa.CheckConstraint("octet_length(secret_hash) = 32", name=op.f("ck_api_keys_secret_hash")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_api_keys_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "device_id"], ["devices.tenant_id", "devices.id"], name="fk_api_keys_device",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    # A name is one live key; a revoked (or rotated) key keeps its name in the listing.
    op.create_index("uq_api_keys_tenant_name", "api_keys", ["tenant_id", "name"], unique=True,
                    postgresql_where=sa.text("revoked_at IS NULL"))
    op.create_table(
        "api_requests",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("principal", sa.Text(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("route", sa.Text(), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("duration_ms", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_api_requests_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_requests")),
    )
    op.create_index("ix_api_requests_tenant_at", "api_requests", ["tenant_id", "at"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("parameters", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'succeeded', 'failed')", name=op.f("ck_jobs_status")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_jobs_tenant_id_tenants"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_tenant", "jobs", ["tenant_id", "id"])
    # The API lists a tenant's entries in id order (cursor pagination) and filters them by these.
    op.create_index("ix_emission_entries_tenant_id_id", "emission_entries", ["tenant_id", "id"])
    _security()


def _security() -> None:
    rw, ro = isolate_tenant_tables(op.get_bind(), _TABLES)
    for table in _TABLES:
        op.execute(f'GRANT SELECT ON {table} TO "{rw}", "{ro}"')
        op.execute(f'GRANT USAGE ON SEQUENCE {table}_id_seq TO "{rw}"')
    # The API writes with the read-write role only: keys (admin scope), its request log (and prunes
    # it), jobs and their outcome.
    op.execute(f'GRANT INSERT, DELETE ON api_keys TO "{rw}"')
    op.execute(f'GRANT UPDATE (revoked_at, last_used_at, expires_at) ON api_keys TO "{rw}"')
    op.execute(f'GRANT INSERT, DELETE ON api_requests TO "{rw}"')
    op.execute(f'GRANT INSERT, UPDATE ON jobs TO "{rw}"')
    # HTTP meter ingest and the device endpoints, with the tenant's read-write role (RLS keeps them
    # in the tenant): the statements of the MQTT ingest, and devices created, re-keyed and revoked.
    op.execute(f'GRANT INSERT ON readings, rejects TO "{rw}"')
    op.execute(f'GRANT INSERT, DELETE ON devices TO "{rw}"')
    op.execute(f'GRANT UPDATE (last_seen, credential_hash, revoked_at) ON devices TO "{rw}"')


def downgrade() -> None:
    rw, _ = tenant_groups(op.get_bind())
    op.execute(f'REVOKE INSERT ON readings, rejects FROM "{rw}"')
    op.execute(f'REVOKE INSERT, DELETE ON devices FROM "{rw}"')
    op.execute(f'REVOKE UPDATE (last_seen, credential_hash, revoked_at) ON devices FROM "{rw}"')
    op.drop_index("ix_emission_entries_tenant_id_id", table_name="emission_entries")
    for table in reversed(_TABLES):
        op.drop_table(table)
