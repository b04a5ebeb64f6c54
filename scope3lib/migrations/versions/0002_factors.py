"""Factor datasets and factors (public reference data); reporting periods that freeze their entries.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Factors are public reference data, not tenant-owned: every platform role may read them, only the
admin (the tables' owner) writes. Periods are tenant-owned, with the same row-level security as
every tenant table (migration 0001). A trigger on ``emission_entries`` refuses any insert, update or
delete of an entry that falls in a closed period, whoever sends it, unless the same transaction
opened an explicit recalculation through ``begin_period_recalculation``, which leaves an audit row
that tenants can read but not change.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from scope3lib.schema import group_role, ingest_role, role_prefix

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "factor_datasets",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("publisher", sa.Text(), nullable=False),
        sa.Column("licence", sa.Text(), nullable=False),
        sa.Column("citation", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("builtin", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_factor_datasets")),
        sa.UniqueConstraint("source", "version", name="uq_factor_datasets_source_version"),
    )
    op.create_table(
        "factors",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("dataset_id", sa.BigInteger(), nullable=False),
        sa.Column("factor_key", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("unit", sa.Text(), nullable=False),
        sa.Column("region", sa.Text(), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("kg_co2e_per_unit", sa.Double(), nullable=False),
        sa.Column("kg_co2_per_unit", sa.Double(), nullable=True),
        sa.Column("kg_ch4_per_unit", sa.Double(), nullable=True),
        sa.Column("kg_n2o_per_unit", sa.Double(), nullable=True),
        sa.Column("gwp", sa.Text(), nullable=False),
        sa.Column("scope", sa.SmallInteger(), nullable=True),
        sa.Column("category_hint", sa.SmallInteger(), nullable=True),
        sa.Column("citation", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["factor_datasets.id"], name=op.f("fk_factors_dataset_id_factor_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_factors")),
        sa.UniqueConstraint("dataset_id", "factor_key", "region", "year", name="uq_factors_dataset_key_region_year"),
    )
    op.create_table(
        "periods",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("is_base_year", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("status", sa.String(length=8), server_default="open", nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_periods_status")),
        sa.CheckConstraint("period_end >= period_start", name=op.f("ck_periods_dates")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_periods_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_periods")),
        sa.UniqueConstraint("tenant_id", "label", name="uq_periods_tenant_label"),
        sa.UniqueConstraint("tenant_id", "id", name="uq_periods_tenant_id_id"),
    )
    op.create_index("ix_periods_tenant_start", "periods", ["tenant_id", "period_start"], unique=False)
    op.create_table(
        "period_recalculations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("period_id", sa.BigInteger(), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("factor_source", sa.Text(), nullable=False),
        sa.Column("factor_version", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("report", sa.dialects.postgresql.JSONB(), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "period_id"], ["periods.tenant_id", "periods.id"], name="fk_period_recalculations_period",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_period_recalculations")),
    )
    op.create_index("ix_period_recalculations_period", "period_recalculations", ["period_id"], unique=False)
    _security()
    _load_builtin_factors()


def _security() -> None:
    conn = op.get_bind()
    prefix = role_prefix(conn)
    rw, ro, ingest = group_role(prefix, "rw"), group_role(prefix, "ro"), ingest_role(prefix)
    groups = f'"{rw}", "{ro}"'

    # Public reference data: everyone reads, only the owner (admin) writes.
    op.execute(f'GRANT SELECT ON factor_datasets, factors TO {groups}, "{ingest}"')

    mine = "(SELECT tenant_of(current_user))"
    for table in ("periods", "period_recalculations"):
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} TO {groups} "
            f"USING (tenant_id = {mine}) WITH CHECK (tenant_id = {mine})"
        )
    op.execute(f"GRANT SELECT ON periods, period_recalculations TO {groups}")
    # Analysts create periods and close them; nothing else of a period changes (trigger below).
    op.execute(f'GRANT INSERT, DELETE ON periods TO "{rw}"')
    op.execute(f'GRANT UPDATE (status, closed_at, is_base_year, label) ON periods TO "{rw}"')
    op.execute(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{rw}"')

    # A closed period is final: it cannot be reopened, moved, relabelled or deleted. Periods of one
    # tenant must not overlap, or an entry would belong to two of them (checked here rather than
    # with an exclusion constraint, which needs the btree_gist extension).
    op.execute(
        """CREATE FUNCTION periods_guard() RETURNS trigger
           LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
           DECLARE
               other text;
           BEGIN
               IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'closed' THEN
                   RAISE EXCEPTION 'period % is closed: it cannot be changed or deleted', OLD.label
                       USING ERRCODE = 'check_violation';
               END IF;
               IF TG_OP = 'DELETE' THEN
                   RETURN OLD;
               END IF;
               SELECT label INTO other FROM public.periods
                WHERE tenant_id = NEW.tenant_id AND id <> NEW.id
                  AND daterange(period_start, period_end, '[]') && daterange(NEW.period_start, NEW.period_end, '[]')
                LIMIT 1;
               IF FOUND THEN
                   RAISE EXCEPTION 'period % overlaps period %', NEW.label, other USING ERRCODE = 'exclusion_violation';
               END IF;
               IF NEW.status = 'closed' AND NEW.closed_at IS NULL THEN
                   NEW.closed_at := now();
               END IF;
               RETURN NEW;
           END $$"""
    )
    op.execute("REVOKE ALL ON FUNCTION periods_guard() FROM PUBLIC")
    op.execute(
        "CREATE TRIGGER periods_guard BEFORE INSERT OR UPDATE OR DELETE ON periods "
        "FOR EACH ROW EXECUTE FUNCTION periods_guard()"
    )

    # Entries in a closed period are frozen. SECURITY DEFINER so the check sees periods and
    # recalculations whatever the caller's row-level security; it only reads.
    op.execute(
        """CREATE FUNCTION emission_entries_freeze() RETURNS trigger
           LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
           DECLARE
               tenants bigint[];
               starts date[];
               closed record;
           BEGIN
               IF TG_OP = 'INSERT' THEN
                   tenants := ARRAY[NEW.tenant_id]; starts := ARRAY[NEW.period_start];
               ELSIF TG_OP = 'DELETE' THEN
                   tenants := ARRAY[OLD.tenant_id]; starts := ARRAY[OLD.period_start];
               ELSE
                   tenants := ARRAY[OLD.tenant_id, NEW.tenant_id]; starts := ARRAY[OLD.period_start, NEW.period_start];
               END IF;
               FOR i IN 1 .. array_length(tenants, 1) LOOP
                   SELECT id, label INTO closed FROM public.periods
                    WHERE tenant_id = tenants[i] AND status = 'closed'
                      AND starts[i] BETWEEN period_start AND period_end;
                   IF FOUND AND NOT EXISTS (
                       SELECT 1 FROM public.period_recalculations
                        WHERE period_id = closed.id AND txid = txid_current()) THEN
                       RAISE EXCEPTION 'period % is closed: its emission entries cannot be %',
                             closed.label, 'inserted, changed or deleted'
                           USING ERRCODE = 'check_violation',
                                 HINT = 'apply a new factor dataset with an explicit recalculation '
                                        '(scope3lib.accounting.inventory.recalculate)';
                   END IF;
               END LOOP;
               IF TG_OP = 'DELETE' THEN
                   RETURN OLD;
               END IF;
               RETURN NEW;
           END $$"""
    )
    op.execute("REVOKE ALL ON FUNCTION emission_entries_freeze() FROM PUBLIC")
    op.execute(
        "CREATE TRIGGER emission_entries_freeze BEFORE INSERT OR UPDATE OR DELETE ON emission_entries "
        "FOR EACH ROW EXECUTE FUNCTION emission_entries_freeze()"
    )

    # The one way to change a closed period's entries: record why, with the report, in this transaction.
    # The caller is identified by session_user (its login role), which SET ROLE cannot change.
    op.execute(
        """CREATE FUNCTION begin_period_recalculation(p_period_id bigint, p_source text, p_version text,
                                                     p_reason text, p_report jsonb) RETURNS bigint
           LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
           DECLARE
               caller record;
               target record;
               new_id bigint;
           BEGIN
               SELECT tenant_id, access INTO caller FROM public.tenant_roles WHERE role_name = session_user;
               SELECT id, tenant_id INTO target FROM public.periods WHERE id = p_period_id;
               IF NOT FOUND OR (caller.tenant_id IS NOT NULL AND caller.tenant_id <> target.tenant_id) THEN
                   RAISE EXCEPTION 'no period %', p_period_id USING ERRCODE = 'no_data_found';
               END IF;
               IF caller.tenant_id IS NOT NULL AND caller.access <> 'rw' THEN
                   RAISE EXCEPTION 'a read-only role cannot recalculate a period'
                       USING ERRCODE = 'insufficient_privilege';
               END IF;
               IF coalesce(trim(p_reason), '') = '' THEN
                   RAISE EXCEPTION 'a recalculation needs a reason' USING ERRCODE = 'check_violation';
               END IF;
               INSERT INTO public.period_recalculations
                      (tenant_id, period_id, txid, factor_source, factor_version, reason, report, requested_by)
               VALUES (target.tenant_id, p_period_id, txid_current(), p_source, p_version, p_reason, p_report,
                       session_user)
               RETURNING id INTO new_id;
               RETURN new_id;
           END $$"""
    )
    op.execute("REVOKE ALL ON FUNCTION begin_period_recalculation(bigint, text, text, text, jsonb) FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION begin_period_recalculation(bigint, text, text, text, jsonb) TO "{rw}"')


def _load_builtin_factors() -> None:
    # The curated set ships with the package; loading it here means `scope3 db upgrade` leaves a
    # platform that calculates before any import. Later additions load idempotently on first use.
    from scope3lib.factors.store import load_builtin

    load_builtin(op.get_bind())


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS emission_entries_freeze ON emission_entries")
    op.execute("DROP FUNCTION IF EXISTS emission_entries_freeze()")
    op.execute("DROP FUNCTION IF EXISTS begin_period_recalculation(bigint, text, text, text, jsonb)")
    op.drop_index("ix_period_recalculations_period", table_name="period_recalculations")
    op.drop_table("period_recalculations")
    op.execute("DROP TRIGGER IF EXISTS periods_guard ON periods")
    op.drop_index("ix_periods_tenant_start", table_name="periods")
    op.drop_table("periods")
    op.execute("DROP FUNCTION IF EXISTS periods_guard()")
    op.drop_table("factors")
    op.drop_table("factor_datasets")
