"""A company's own data: supplier records with identifiers and history, ERP spend extracts, rules, disclosures.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05

Suppliers gain identifiers (LEI, DUNS, VAT number), a contact, the year of their annual spend, and the
state of a record that was archived or merged into another. Every change of a supplier row is appended to
``supplier_changes`` by a trigger (who, when, before and after), which no role may change or delete.
Spend extracts are kept line by line (``spend_lines``, with the file, line and a hash of each) and reach the
inventory as one spend-based entry per group of lines (``spend_groups``: month, supplier or vendor,
category, sector, currency), so an entry traces back to its lines and a corrected extract re-prices the
entries of its months through the ledger.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from scope3lib.migrations.ddl import supplier_fk, tenant_fk
from scope3lib.schema import isolate_tenant_tables

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("supplier_aliases", "supplier_changes", "supplier_disclosures", "column_mappings", "classification_rules",
           "spend_imports", "spend_groups", "spend_lines")  # in creation order: downgrade drops them reversed


def _created_at() -> sa.Column[object]:
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)


def upgrade() -> None:
    _suppliers()
    _supplier_tables()
    _spend_tables()
    _history_trigger()
    _security()


def _suppliers() -> None:
    op.add_column("suppliers", sa.Column("lei", sa.String(length=20), nullable=True))
    op.add_column("suppliers", sa.Column("duns", sa.String(length=9), nullable=True))
    op.add_column("suppliers", sa.Column("vat_number", sa.String(length=20), nullable=True))
    op.add_column("suppliers", sa.Column("contact_email", sa.Text(), nullable=True))
    op.add_column("suppliers", sa.Column("spend_year", sa.SmallInteger(), nullable=True))
    op.add_column("suppliers", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("suppliers", sa.Column("merged_into", sa.BigInteger(), nullable=True))
    op.add_column("suppliers", sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"),
                                         nullable=False))
    op.create_foreign_key("fk_suppliers_merged_into", "suppliers", "suppliers", ["tenant_id", "merged_into"],
                          ["tenant_id", "id"], ondelete="RESTRICT")
    # An identifier names one live record per tenant; a merged record gives its identifiers to the survivor.
    for column in ("lei", "duns", "vat_number"):
        op.create_index(f"uq_suppliers_tenant_{column}", "suppliers", ["tenant_id", column], unique=True,
                        postgresql_where=sa.text(f"{column} IS NOT NULL"))


def _supplier_tables() -> None:
    op.create_table(
        "supplier_aliases",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("supplier_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("alias", sa.Text(), nullable=False),
        sa.Column("alias_key", sa.Text(), nullable=False),
        _created_at(),
        sa.CheckConstraint("kind IN ('name', 'vendor_id')", name=op.f("ck_supplier_aliases_kind")),
        tenant_fk("supplier_aliases"),
        supplier_fk("supplier_aliases"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplier_aliases")),
        sa.UniqueConstraint("tenant_id", "kind", "alias_key", name="uq_supplier_aliases_tenant_kind_key"),
    )
    op.create_table(
        "supplier_changes",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("supplier_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("role_name", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("before", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("after", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        tenant_fk("supplier_changes"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplier_changes")),
    )
    op.create_index("ix_supplier_changes_supplier", "supplier_changes", ["tenant_id", "supplier_id", "id"])
    op.create_table(
        "supplier_disclosures",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("supplier_id", sa.BigInteger(), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("scope1_kg", sa.Double(), nullable=False),
        sa.Column("scope2_kg", sa.Double(), nullable=False),
        sa.Column("upstream_kg", sa.Double(), nullable=True),
        sa.Column("revenue", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("verification", sa.String(length=16), nullable=False),
        sa.Column("source_document", sa.Text(), nullable=False),
        sa.Column("eeio_direct_share", sa.Double(), nullable=True),
        sa.Column("recorded_by", sa.Text(), nullable=False),
        _created_at(),
        sa.CheckConstraint("scope1_kg >= 0 AND scope2_kg >= 0 AND (upstream_kg IS NULL OR upstream_kg >= 0)",
                           name=op.f("ck_supplier_disclosures_emissions")),
        sa.CheckConstraint("revenue > 0", name=op.f("ck_supplier_disclosures_revenue")),
        sa.CheckConstraint("verification IN ('none', 'limited', 'reasonable')",
                           name=op.f("ck_supplier_disclosures_verification")),
        sa.CheckConstraint("eeio_direct_share IS NULL OR eeio_direct_share BETWEEN 0 AND 1",
                           name=op.f("ck_supplier_disclosures_direct_share")),
        tenant_fk("supplier_disclosures"),
        supplier_fk("supplier_disclosures"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplier_disclosures")),
        sa.UniqueConstraint("tenant_id", "supplier_id", "year", name="uq_supplier_disclosures_supplier_year"),
    )
    op.create_table(
        "column_mappings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("columns", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("decimal", sa.String(length=1), nullable=False),
        sa.Column("date_format", sa.Text(), nullable=False),
        _created_at(),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("decimal IN ('.', ',')", name=op.f("ck_column_mappings_decimal")),
        tenant_fk("column_mappings"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_column_mappings")),
        sa.UniqueConstraint("tenant_id", "name", name="uq_column_mappings_tenant_name"),
    )
    op.create_table(
        "classification_rules",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("pattern", sa.Text(), nullable=False),
        sa.Column("category", sa.SmallInteger(), nullable=False),
        sa.Column("naics_code", sa.String(length=6), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        _created_at(),
        sa.CheckConstraint("kind IN ('commodity', 'gl_account', 'vendor', 'keyword')",
                           name=op.f("ck_classification_rules_kind")),
        sa.CheckConstraint("category BETWEEN 1 AND 15", name=op.f("ck_classification_rules_category")),
        tenant_fk("classification_rules"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_classification_rules")),
        sa.UniqueConstraint("tenant_id", "kind", "pattern", name="uq_classification_rules_tenant_kind_pattern"),
    )


def _spend_tables() -> None:
    op.create_table(
        "spend_imports",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("mapping", sa.Text(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("replaces", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("imported_by", sa.Text(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        tenant_fk("spend_imports"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spend_imports")),
        sa.UniqueConstraint("tenant_id", "id", name="uq_spend_imports_tenant_id_id"),
        sa.UniqueConstraint("tenant_id", "sha256", name="uq_spend_imports_tenant_sha256"),
    )
    op.create_table(
        "spend_groups",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=True),
        tenant_fk("spend_groups"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spend_groups")),
        sa.UniqueConstraint("tenant_id", "id", name="uq_spend_groups_tenant_id_id"),
        sa.UniqueConstraint("tenant_id", "group_key", name="uq_spend_groups_tenant_key"),
    )
    op.create_table(
        "spend_lines",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("import_id", sa.BigInteger(), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("line_hash", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("vendor_id", sa.Text(), nullable=True),
        sa.Column("vendor_name", sa.Text(), nullable=True),
        sa.Column("vendor_key", sa.Text(), nullable=False),
        sa.Column("supplier_id", sa.BigInteger(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=18, scale=2), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("posting_date", sa.Date(), nullable=False),
        sa.Column("gl_account", sa.Text(), nullable=True),
        sa.Column("cost_centre", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("commodity_code", sa.Text(), nullable=True),
        sa.Column("category", sa.SmallInteger(), nullable=True),
        sa.Column("naics_code", sa.String(length=6), nullable=True),
        sa.Column("classified_by", sa.String(length=16), nullable=True),
        sa.Column("group_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id", "import_id"], ["spend_imports.tenant_id", "spend_imports.id"],
                                name="fk_spend_lines_import", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id", "group_id"], ["spend_groups.tenant_id", "spend_groups.id"],
                                name="fk_spend_lines_group", ondelete="SET NULL (group_id)"),
        supplier_fk("spend_lines", "SET NULL (supplier_id)"),
        tenant_fk("spend_lines"),
        sa.PrimaryKeyConstraint("import_id", "line_no", name=op.f("pk_spend_lines")),
    )
    op.create_index("ix_spend_lines_tenant_date", "spend_lines", ["tenant_id", "posting_date"])
    op.create_index("ix_spend_lines_group", "spend_lines", ["group_id"])


def _history_trigger() -> None:
    # SECURITY DEFINER: it writes supplier_changes, which tenant roles may only read. Who: the person the
    # session names (scope3.actor: the hub user or the operator running the CLI), else the login role.
    op.execute(
        r"""CREATE FUNCTION supplier_history() RETURNS trigger
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
            DECLARE
                v_action text;
                v_actor text := coalesce(nullif(current_setting('scope3.actor', true), ''), session_user);
                v_reason text := nullif(current_setting('scope3.change_reason', true), '');
            BEGIN
                IF TG_OP = 'INSERT' THEN
                    INSERT INTO public.supplier_changes (tenant_id, supplier_id, action, actor, role_name, reason,
                                                         before, after)
                    VALUES (NEW.tenant_id, NEW.id, 'create', v_actor, session_user, v_reason, NULL, to_jsonb(NEW));
                    RETURN NULL;
                ELSIF TG_OP = 'DELETE' THEN
                    INSERT INTO public.supplier_changes (tenant_id, supplier_id, action, actor, role_name, reason,
                                                         before, after)
                    VALUES (OLD.tenant_id, OLD.id, 'delete', v_actor, session_user, v_reason, to_jsonb(OLD), NULL);
                    RETURN NULL;
                END IF;
                IF to_jsonb(OLD) - 'updated_at' = to_jsonb(NEW) - 'updated_at' THEN
                    RETURN NULL;  -- nothing changed: no history row
                END IF;
                v_action := coalesce(nullif(current_setting('scope3.supplier_action', true), ''), 'update');
                INSERT INTO public.supplier_changes (tenant_id, supplier_id, action, actor, role_name, reason,
                                                     before, after)
                VALUES (NEW.tenant_id, NEW.id, v_action, v_actor, session_user, v_reason, to_jsonb(OLD),
                        to_jsonb(NEW));
                RETURN NULL;
            END $$"""
    )
    op.execute("REVOKE ALL ON FUNCTION supplier_history() FROM PUBLIC")
    op.execute("CREATE TRIGGER supplier_history AFTER INSERT OR UPDATE OR DELETE ON suppliers "
               "FOR EACH ROW EXECUTE FUNCTION supplier_history()")
    # The history is append-only for every role: ledger_refuse (migration 0004) refuses the statement.
    for event in ("UPDATE", "DELETE", "TRUNCATE"):
        op.execute(f"CREATE TRIGGER supplier_changes_refuse_{event.lower()} BEFORE {event} ON supplier_changes "
                   "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse('the supplier history is append-only')")


def _security() -> None:
    rw, ro = isolate_tenant_tables(op.get_bind(), _TABLES)
    for table in _TABLES:
        op.execute(f'GRANT SELECT ON {table} TO "{rw}", "{ro}"')
        if table != "supplier_changes":  # written by its trigger only
            op.execute(f'GRANT INSERT, UPDATE, DELETE ON {table} TO "{rw}"')
            if table != "spend_lines":
                op.execute(f'GRANT USAGE ON SEQUENCE {table}_id_seq TO "{rw}"')


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS supplier_history ON suppliers")
    for table in reversed(_TABLES):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS supplier_history()")
    for column in ("lei", "duns", "vat_number"):
        op.drop_index(f"uq_suppliers_tenant_{column}", table_name="suppliers")
    op.drop_constraint("fk_suppliers_merged_into", "suppliers", type_="foreignkey")
    for column in ("updated_at", "merged_into", "archived_at", "spend_year", "contact_email", "vat_number", "duns",
                   "lei"):
        op.drop_column("suppliers", column)
