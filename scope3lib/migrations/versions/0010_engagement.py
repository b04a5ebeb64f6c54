"""Supplier engagement: data requests, upload tokens, submissions; decisions on submissions in the ledger; purchase
lines that carry a product, a quantity and a unit.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06

A tenant asks a supplier for data (``data_requests``: product footprints for product ids, or an annual
disclosure) by PACT, a tokenised upload link (``upload_tokens``, stored as SHA-256 only, expiring, for one
request, with bounded uses and size) or a spreadsheet template. Whatever comes back lands in
``supplier_submissions`` as *pending*; a second user of the tenant approves or rejects it. The database
refuses a decision by the person who submitted, a decided submission that changes again and a payload that
changes at all; and, as for emission entries (migration 0004), PostgreSQL itself appends each decision to the
tenant's ledger (events ``approve`` and ``reject``, the leaf's ``entry_id`` being the submission's id and its
``entry`` the canonical JSON of the decision), so no decision escapes the log.

Spend lines gain ``product_id``, ``quantity`` and ``unit`` (all optional): an approved product footprint prices
the purchases of its products.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from scope3lib.migrations.ddl import execute_raw, supplier_fk, tenant_fk
from scope3lib.schema import isolate_tenant_tables

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("data_requests", "upload_tokens", "supplier_submissions")
_EVENTS_BEFORE = "event IN ('create', 'correct', 'recalculate', 'delete')"
_EVENTS_AFTER = "event IN ('create', 'correct', 'recalculate', 'delete', 'approve', 'reject')"


def _request_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(["tenant_id", "request_id"], ["data_requests.tenant_id", "data_requests.id"],
                                   name=f"fk_{table}_request", ondelete="CASCADE")


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)


def _requests() -> None:
    op.create_table(
        "data_requests",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("supplier_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("product_ids", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("year", sa.SmallInteger(), nullable=True),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("pact_client_id", sa.BigInteger(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("reminders", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        _now("created_at"),
        sa.CheckConstraint("kind IN ('pcf', 'disclosure')", name=op.f("ck_data_requests_kind")),
        sa.CheckConstraint("(kind = 'pcf') = (product_ids IS NOT NULL AND cardinality(product_ids) > 0)",
                           name=op.f("ck_data_requests_products")),
        sa.CheckConstraint("(kind = 'disclosure') = (year IS NOT NULL)", name=op.f("ck_data_requests_year")),
        sa.CheckConstraint("channel IN ('pact', 'upload', 'template')", name=op.f("ck_data_requests_channel")),
        sa.CheckConstraint("(channel = 'pact') = (pact_client_id IS NOT NULL)", name=op.f("ck_data_requests_pact")),
        sa.CheckConstraint("status IN ('sent', 'answered', 'overdue', 'rejected')",
                           name=op.f("ck_data_requests_status")),
        sa.CheckConstraint("reminders >= 0", name=op.f("ck_data_requests_reminders")),
        tenant_fk("data_requests"),
        supplier_fk("data_requests"),
        sa.ForeignKeyConstraint(["pact_client_id"], ["pact_clients.id"], name="fk_data_requests_pact_client",
                                ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_requests")),
        sa.UniqueConstraint("tenant_id", "id", name="uq_data_requests_tenant_id_id"),
    )
    op.create_index("ix_data_requests_tenant_status", "data_requests", ["tenant_id", "status", "due_date"])
    op.create_table(
        "upload_tokens",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("max_uses", sa.SmallInteger(), nullable=False),
        sa.Column("uses", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("max_bytes", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        _now("created_at"),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("octet_length(token_hash) = 32", name=op.f("ck_upload_tokens_token_hash")),
        sa.CheckConstraint("max_uses >= 1 AND uses >= 0 AND uses <= max_uses", name=op.f("ck_upload_tokens_uses")),
        sa.CheckConstraint("max_bytes > 0", name=op.f("ck_upload_tokens_max_bytes")),
        tenant_fk("upload_tokens"),
        _request_fk("upload_tokens"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_upload_tokens_token_hash")),
    )


def _submissions() -> None:
    op.create_table(
        "supplier_submissions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("request_id", sa.BigInteger(), nullable=True),
        sa.Column("supplier_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=8), server_default=sa.text("'pending'"), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("payload_sha256", sa.String(length=64), nullable=False),
        sa.Column("submitted_by", sa.Text(), nullable=False),
        _now("submitted_at"),
        sa.Column("decided_by", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint("kind IN ('pcf', 'disclosure')", name=op.f("ck_supplier_submissions_kind")),
        sa.CheckConstraint("channel IN ('pact', 'upload', 'template')", name=op.f("ck_supplier_submissions_channel")),
        sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')",
                           name=op.f("ck_supplier_submissions_status")),
        sa.CheckConstraint("(status = 'pending') = (decided_by IS NULL AND decided_at IS NULL)",
                           name=op.f("ck_supplier_submissions_decided")),
        # Nobody approves (or rejects) their own submission: the four-eyes rule, in the database.
        sa.CheckConstraint("decided_by IS NULL OR lower(decided_by) <> lower(submitted_by)",
                           name=op.f("ck_supplier_submissions_four_eyes")),
        sa.CheckConstraint("status <> 'rejected' OR length(trim(reason)) > 0",
                           name=op.f("ck_supplier_submissions_reason")),
        tenant_fk("supplier_submissions"),
        supplier_fk("supplier_submissions"),
        _request_fk("supplier_submissions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_supplier_submissions")),
    )
    op.create_index("ix_supplier_submissions_tenant_status", "supplier_submissions", ["tenant_id", "status", "id"])


def _spend_lines() -> None:
    op.add_column("spend_lines", sa.Column("product_id", sa.Text(), nullable=True))
    op.add_column("spend_lines", sa.Column("quantity", sa.Double(), nullable=True))
    op.add_column("spend_lines", sa.Column("unit", sa.Text(), nullable=True))


def _decision_trigger() -> None:
    # A decision is final and a payload never changes; the first decision of a pending submission appends a
    # leaf to the tenant's log, as ledger_append does for entries (the head row locked, so indices stay
    # gap-free and in commit order). SECURITY DEFINER: tenant roles cannot write the log themselves.
    execute_raw(
        r"""CREATE FUNCTION submission_decided() RETURNS trigger
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
            SET TimeZone = 'UTC' SET extra_float_digits = 1 SET DateStyle = 'ISO, YMD'
            SET IntervalStyle = 'postgres' SET bytea_output = 'hex' AS $fn$
            DECLARE
                v_event text;
                v_start bigint;
                v_at timestamptz;
                v_entry text;
            BEGIN
                IF NEW.payload IS DISTINCT FROM OLD.payload OR NEW.payload_sha256 IS DISTINCT FROM OLD.payload_sha256
                   OR NEW.submitted_by IS DISTINCT FROM OLD.submitted_by OR NEW.supplier_id <> OLD.supplier_id
                   OR NEW.id <> OLD.id OR NEW.tenant_id <> OLD.tenant_id THEN
                    RAISE EXCEPTION 'a submission keeps what the supplier sent, and who sent it'
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                IF OLD.status <> 'pending' THEN
                    RAISE EXCEPTION 'submission % was % by % already: a decision is final', OLD.id, OLD.status,
                        OLD.decided_by USING ERRCODE = 'check_violation',
                        HINT = 'ask the supplier for a new submission';
                END IF;
                IF NEW.status = 'pending' THEN
                    RETURN NEW;
                END IF;
                v_event := CASE NEW.status WHEN 'approved' THEN 'approve' ELSE 'reject' END;
                INSERT INTO public.ledger_heads AS h (tenant_id, size) VALUES (NEW.tenant_id, 1)
                    ON CONFLICT (tenant_id) DO UPDATE SET size = h.size + 1 RETURNING h.size - 1 INTO v_start;
                v_at := clock_timestamp();
                v_entry := public.ledger_canonical(jsonb_build_object(
                    'submission_id', NEW.id, 'request_id', NEW.request_id, 'supplier_id', NEW.supplier_id,
                    'kind', NEW.kind, 'channel', NEW.channel, 'decision', NEW.status,
                    'submitted_by', NEW.submitted_by, 'submitted_at', to_char(NEW.submitted_at AT TIME ZONE 'UTC',
                    'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), 'decided_by', NEW.decided_by,
                    'payload_sha256', NEW.payload_sha256));
                INSERT INTO public.ledger_leaves
                       (tenant_id, leaf_index, entry_id, event, actor, reason, recorded_at, entry, leaf_hash)
                VALUES (NEW.tenant_id, v_start, NEW.id, v_event, session_user, NEW.reason, v_at, v_entry,
                        sha256('\x00'::bytea || public.ledger_leaf_data(NEW.tenant_id, v_start, NEW.id, v_event,
                                                                        session_user, NEW.reason, v_at, v_entry)));
                RETURN NEW;
            END $fn$"""
    )
    op.execute("REVOKE ALL ON FUNCTION submission_decided() FROM PUBLIC")
    op.execute("CREATE TRIGGER submission_decided BEFORE UPDATE ON supplier_submissions "
               "FOR EACH ROW EXECUTE FUNCTION submission_decided()")
    # Per row: a statement-level trigger would also fire for the empty cascades of deleting a supplier (or a
    # request) that has no submission. Deleting one that has submissions is refused with them.
    op.execute("CREATE TRIGGER supplier_submissions_no_delete BEFORE DELETE ON supplier_submissions "
               "FOR EACH ROW EXECUTE FUNCTION ledger_refuse('a submission is kept with its decision')")
    op.execute("CREATE TRIGGER supplier_submissions_no_truncate BEFORE TRUNCATE ON supplier_submissions "
               "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse('a submission is kept with its decision')")


def upgrade() -> None:
    _requests()
    _submissions()
    _spend_lines()
    op.drop_constraint(op.f("ck_ledger_leaves_event"), "ledger_leaves", type_="check")
    op.create_check_constraint(op.f("ck_ledger_leaves_event"), "ledger_leaves", _EVENTS_AFTER)
    _decision_trigger()
    _security()


def _security() -> None:
    rw, ro = isolate_tenant_tables(op.get_bind(), _TABLES)
    for table in _TABLES:
        op.execute(f'GRANT USAGE ON SEQUENCE {table}_id_seq TO "{rw}"')
    # Token hashes are the API's (read-write role) alone; viewers see the requests and the submissions.
    op.execute(f'GRANT SELECT ON data_requests, supplier_submissions TO "{rw}", "{ro}"')
    op.execute(f'GRANT SELECT ON upload_tokens TO "{rw}"')
    op.execute(f'GRANT INSERT ON data_requests, upload_tokens, supplier_submissions TO "{rw}"')
    op.execute(f'GRANT UPDATE (status, reminders, last_reminded_at) ON data_requests TO "{rw}"')
    op.execute(f'GRANT UPDATE (uses, revoked_at, last_used_at) ON upload_tokens TO "{rw}"')
    op.execute(f'GRANT UPDATE (status, decided_by, decided_at, reason) ON supplier_submissions TO "{rw}"')


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS submission_decided ON supplier_submissions")
    op.execute("DROP TRIGGER IF EXISTS supplier_submissions_no_delete ON supplier_submissions")
    op.execute("DROP TRIGGER IF EXISTS supplier_submissions_no_truncate ON supplier_submissions")
    for table in reversed(_TABLES):
        op.drop_table(table)
    op.execute("DROP FUNCTION IF EXISTS submission_decided()")
    op.drop_constraint(op.f("ck_ledger_leaves_event"), "ledger_leaves", type_="check")
    op.create_check_constraint(op.f("ck_ledger_leaves_event"), "ledger_leaves", _EVENTS_BEFORE)
    for column in ("unit", "quantity", "product_id"):
        op.drop_column("spend_lines", column)
