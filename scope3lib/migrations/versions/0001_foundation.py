"""Foundation: tenants, users, suppliers, emission entries, devices, readings, rejects; roles and RLS.

Revision ID: 0001
Revises:
Create Date: 2026-11-26

Tenant isolation lives here, in PostgreSQL (docs/design.md, decision 2): every tenant-owned table has
row-level security whose policies derive the tenant from ``current_user`` through the
``tenant_roles`` map, which no tenant role can read or change. Nothing a client can SET changes
which tenant it is.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from scope3lib.schema import group_role, ingest_role, prefix_for_database

# revision identifiers, used by Alembic.
revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "installation",
        sa.Column("id", sa.SmallInteger(), nullable=False),
        sa.Column("role_prefix", sa.String(length=20), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_installation_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_installation")),
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("slug", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("plan", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("plan IN ('free', 'starter', 'professional', 'enterprise')", name=op.f("ck_tenants_plan")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("slug", name=op.f("uq_tenants_slug")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.CheckConstraint("role IN ('owner', 'admin', 'member', 'viewer')", name=op.f("ck_memberships_role")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_memberships_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_memberships_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "tenant_id", name=op.f("pk_memberships")),
    )
    op.create_table(
        "rejects",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_rejects_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rejects")),
    )
    op.create_index(op.f("ix_rejects_tenant_id"), "rejects", ["tenant_id"], unique=False)
    op.create_table(
        "suppliers",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("naics_code", sa.String(length=6), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("annual_spend", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("spend_currency", sa.String(length=3), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("annual_spend IS NULL OR annual_spend >= 0", name=op.f("ck_suppliers_spend_nonnegative")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_suppliers_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppliers")),
        sa.UniqueConstraint("tenant_id", "name", name="uq_suppliers_tenant_name"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_suppliers_tenant_id_id"),
    )
    op.create_index(op.f("ix_suppliers_tenant_id"), "suppliers", ["tenant_id"], unique=False)
    op.create_table(
        "tenant_roles",
        sa.Column("role_name", sa.String(length=63), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("access", sa.String(length=2), nullable=False),
        sa.CheckConstraint("access IN ('rw', 'ro')", name=op.f("ck_tenant_roles_access")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tenant_roles_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("role_name", name=op.f("pk_tenant_roles")),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("device_key", sa.String(length=64), nullable=False),
        sa.Column("supplier_id", sa.BigInteger(), nullable=True),
        sa.Column("grid_region", sa.Text(), nullable=False),
        sa.Column("category", sa.SmallInteger(), nullable=False),
        sa.Column("expected_interval_s", sa.Integer(), nullable=False),
        sa.Column("credential_hash", sa.Text(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("category BETWEEN 1 AND 15", name=op.f("ck_devices_category")),
        sa.CheckConstraint("expected_interval_s > 0", name=op.f("ck_devices_interval")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "supplier_id"],
            ["suppliers.tenant_id", "suppliers.id"],
            name="fk_devices_supplier",
            ondelete="SET NULL (supplier_id)",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_devices_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("tenant_id", "device_key", name="uq_devices_tenant_key"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_devices_tenant_id_id"),
    )
    op.create_table(
        "emission_entries",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("category", sa.SmallInteger(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=24), nullable=False),
        sa.Column("supplier_id", sa.BigInteger(), nullable=True),
        sa.Column("device_id", sa.BigInteger(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("activity_quantity", sa.Double(), nullable=True),
        sa.Column("activity_unit", sa.Text(), nullable=True),
        sa.Column("spend", sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column("spend_currency", sa.String(length=3), nullable=True),
        sa.Column("spend_year", sa.SmallInteger(), nullable=True),
        sa.Column("factor_source", sa.Text(), nullable=True),
        sa.Column("factor_version", sa.Text(), nullable=True),
        sa.Column("factor_key", sa.Text(), nullable=True),
        sa.Column("factor_value", sa.Double(), nullable=True),
        sa.Column("factor_unit", sa.Text(), nullable=True),
        sa.Column("kg_co2e", sa.Double(), nullable=False),
        sa.Column("data_source", sa.String(length=8), nullable=False),
        sa.Column("data_quality", sa.SmallInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "data_source IN ('manual', 'import', 'iot', 'ml')", name=op.f("ck_emission_entries_data_source")
        ),
        sa.CheckConstraint(
            "method IN ('spend_based', 'average_data', 'distance_based', 'supplier_specific', 'hybrid')",
            name=op.f("ck_emission_entries_method"),
        ),
        sa.CheckConstraint("category BETWEEN 1 AND 15", name=op.f("ck_emission_entries_category")),
        sa.CheckConstraint("data_quality BETWEEN 1 AND 5", name=op.f("ck_emission_entries_data_quality")),
        sa.CheckConstraint("period_end >= period_start", name=op.f("ck_emission_entries_period")),
        # Composite keys keep references inside one tenant: foreign keys are checked without
        # row-level security, so a plain supplier_id could point at another tenant's supplier.
        sa.ForeignKeyConstraint(
            ["tenant_id", "device_id"],
            ["devices.tenant_id", "devices.id"],
            name="fk_emission_entries_device",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "supplier_id"],
            ["suppliers.tenant_id", "suppliers.id"],
            name="fk_emission_entries_supplier",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_emission_entries_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emission_entries")),
    )
    op.create_index(
        "ix_emission_entries_tenant_period", "emission_entries", ["tenant_id", "period_start"], unique=False
    )
    op.create_table(
        "readings",
        sa.Column("device_id", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("kwh", sa.Double(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("kwh >= 0", name=op.f("ck_readings_kwh_nonnegative")),
        sa.ForeignKeyConstraint(
            ["tenant_id", "device_id"],
            ["devices.tenant_id", "devices.id"],
            name="fk_readings_device",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_readings_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("device_id", "ts", name=op.f("pk_readings")),
    )
    op.create_index("ix_readings_tenant_ts", "readings", ["tenant_id", "ts"], unique=False)
    op.create_index("ix_emission_entries_supplier", "emission_entries", ["supplier_id"], unique=False)
    _security()


def _security() -> None:
    conn = op.get_bind()
    prefix = prefix_for_database(conn.scalar(sa.text("SELECT current_database()")))
    conn.execute(sa.text("INSERT INTO installation (id, role_prefix) VALUES (1, :p)"), {"p": prefix})
    rw, ro, ingest = group_role(prefix, "rw"), group_role(prefix, "ro"), ingest_role(prefix)
    tenant_groups = f'"{rw}", "{ro}"'
    for role, login in ((rw, False), (ro, False), (ingest, True)):
        op.execute(
            f"""DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                    CREATE ROLE "{role}" {"LOGIN" if login else "NOLOGIN"} NOSUPERUSER NOCREATEDB NOCREATEROLE
                        NOINHERIT NOBYPASSRLS;
                END IF;
            END $$"""
        )
    db = conn.scalar(sa.text("SELECT current_database()"))
    op.execute(f'GRANT CONNECT ON DATABASE "{db}" TO "{rw}", "{ro}", "{ingest}"')
    # Nobody but the owner creates objects here: a tenant could otherwise plant a function or a
    # view in a schema other tenants' sessions search.
    op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    op.execute(f'GRANT USAGE ON SCHEMA public TO {tenant_groups}, "{ingest}"')

    # The tenant of a role. SECURITY DEFINER so it can read tenant_roles, which tenant roles
    # cannot; it takes the role as an argument because inside a SECURITY DEFINER function
    # current_user is the function's owner.
    op.execute(
        """CREATE FUNCTION tenant_of(role_name name) RETURNS bigint
           LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public
           AS $$ SELECT tenant_id FROM public.tenant_roles WHERE role_name = $1 $$"""
    )
    op.execute("REVOKE ALL ON FUNCTION tenant_of(name) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION tenant_of(name) TO {tenant_groups}")
    # Wrapped in a sub-select so PostgreSQL evaluates it once per query, not once per row.
    mine = "(SELECT tenant_of(current_user))"

    for table in ("tenants", "users", "memberships", "suppliers", "emission_entries", "devices", "readings", "rejects"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")

    op.execute(f"CREATE POLICY tenant_isolation ON tenants TO {tenant_groups} USING (id = {mine})")
    op.execute(
        f"""CREATE POLICY tenant_isolation ON users TO {tenant_groups}
            USING (id IN (SELECT user_id FROM memberships WHERE tenant_id = {mine}))"""
    )
    for table in ("memberships", "suppliers", "emission_entries", "devices", "readings", "rejects"):
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} TO {tenant_groups} "
            f"USING (tenant_id = {mine}) WITH CHECK (tenant_id = {mine})"
        )

    # What tenant roles may do; RLS above decides on which rows.
    op.execute(f"GRANT SELECT ON tenants, memberships, readings, rejects TO {tenant_groups}")
    op.execute(f"GRANT SELECT (id, username, created_at) ON users TO {tenant_groups}")
    device_cols = (
        "id, tenant_id, device_key, supplier_id, grid_region, category, expected_interval_s, last_seen, created_at"
    )
    op.execute(f"GRANT SELECT ({device_cols}) ON devices TO {tenant_groups}")
    op.execute(f'GRANT UPDATE (supplier_id, grid_region, category, expected_interval_s) ON devices TO "{rw}"')
    op.execute(f"GRANT SELECT ON suppliers, emission_entries TO {tenant_groups}")
    op.execute(f'GRANT INSERT, UPDATE, DELETE ON suppliers, emission_entries TO "{rw}"')
    op.execute(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{rw}"')

    # The ingest service: look devices up, write readings and rejects, mark devices seen.
    op.execute(f'GRANT SELECT (id, slug) ON tenants TO "{ingest}"')
    op.execute(f'GRANT SELECT (id, tenant_id, device_key), UPDATE (last_seen) ON devices TO "{ingest}"')
    op.execute(f'GRANT INSERT ON readings, rejects TO "{ingest}"')
    op.execute(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{ingest}"')
    op.execute(f'CREATE POLICY ingest_lookup ON tenants FOR SELECT TO "{ingest}" USING (true)')
    op.execute(f'CREATE POLICY ingest_lookup ON devices FOR SELECT TO "{ingest}" USING (true)')
    op.execute(f'CREATE POLICY ingest_seen ON devices FOR UPDATE TO "{ingest}" USING (true) WITH CHECK (true)')
    op.execute(f'CREATE POLICY ingest_write ON readings FOR INSERT TO "{ingest}" WITH CHECK (true)')
    op.execute(f'CREATE POLICY ingest_write ON rejects FOR INSERT TO "{ingest}" WITH CHECK (true)')


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DROP FUNCTION IF EXISTS tenant_of(name)")
    op.drop_index("ix_emission_entries_supplier", table_name="emission_entries")
    op.drop_index("ix_readings_tenant_ts", table_name="readings")
    op.drop_table("readings")
    op.drop_index("ix_emission_entries_tenant_period", table_name="emission_entries")
    op.drop_table("emission_entries")
    op.drop_table("devices")
    op.drop_table("tenant_roles")
    op.drop_index(op.f("ix_suppliers_tenant_id"), table_name="suppliers")
    op.drop_table("suppliers")
    op.drop_index(op.f("ix_rejects_tenant_id"), table_name="rejects")
    op.drop_table("rejects")
    op.drop_table("memberships")
    op.drop_table("users")
    op.drop_table("tenants")
    op.drop_table("installation")
