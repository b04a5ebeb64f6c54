"""Report runs: every scheduled or manual papermill run of a tenant, with its outcome.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from scope3lib.schema import group_role

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempt", sa.SmallInteger(), nullable=False),
        sa.Column("parameters", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("failed_cell", sa.Integer(), nullable=True),
        sa.Column("output_ipynb", sa.Text(), nullable=True),
        sa.Column("output_html", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('running', 'succeeded', 'failed')", name=op.f("ck_report_runs_status")),
        sa.CheckConstraint("trigger IN ('schedule', 'manual')", name=op.f("ck_report_runs_trigger")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_report_runs_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_runs")),
    )
    op.create_index("ix_report_runs_tenant_report", "report_runs", ["tenant_id", "report", "started_at"])
    conn = op.get_bind()
    prefix = conn.scalar(sa.text("SELECT role_prefix FROM installation"))
    rw, ro = group_role(prefix, "rw"), group_role(prefix, "ro")
    mine = "(SELECT tenant_of(current_user))"
    op.execute("ALTER TABLE report_runs ENABLE ROW LEVEL SECURITY")
    op.execute(
        f'CREATE POLICY tenant_isolation ON report_runs TO "{rw}", "{ro}" '
        f"USING (tenant_id = {mine}) WITH CHECK (tenant_id = {mine})"
    )
    op.execute(f'GRANT SELECT ON report_runs TO "{rw}", "{ro}"')
    # The scheduler runs with the tenant's read-write role and records its own runs.
    op.execute(f'GRANT INSERT, UPDATE ON report_runs TO "{rw}"')
    op.execute(f'GRANT USAGE ON SEQUENCE report_runs_id_seq TO "{rw}"')


def downgrade() -> None:
    op.drop_table("report_runs")
