"""Scenarios: a tenant's saved reduction scenarios (levers, growth, discount rate), re-runnable by name.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from scope3lib.schema import group_role

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scenarios",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("base_year", sa.SmallInteger(), nullable=False),
        sa.Column("target_year", sa.SmallInteger(), nullable=False),
        sa.Column("growth", sa.Double(), nullable=False),
        sa.Column("discount_rate", sa.Double(), nullable=False),
        sa.Column("levers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("target_year > base_year", name=op.f("ck_scenarios_years")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_scenarios_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scenarios")),
        sa.UniqueConstraint("tenant_id", "name", name="uq_scenarios_tenant_name"),
    )
    conn = op.get_bind()
    prefix = conn.scalar(sa.text("SELECT role_prefix FROM installation"))
    rw, ro = group_role(prefix, "rw"), group_role(prefix, "ro")
    mine = "(SELECT tenant_of(current_user))"
    op.execute("ALTER TABLE scenarios ENABLE ROW LEVEL SECURITY")
    op.execute(
        f'CREATE POLICY tenant_isolation ON scenarios TO "{rw}", "{ro}" '
        f"USING (tenant_id = {mine}) WITH CHECK (tenant_id = {mine})"
    )
    op.execute(f'GRANT SELECT ON scenarios TO "{rw}", "{ro}"')
    # Analysts save, replace and delete their own scenarios; dashboards only read them.
    op.execute(f'GRANT INSERT, UPDATE, DELETE ON scenarios TO "{rw}"')
    op.execute(f'GRANT USAGE ON SEQUENCE scenarios_id_seq TO "{rw}"')


def downgrade() -> None:
    op.drop_table("scenarios")
