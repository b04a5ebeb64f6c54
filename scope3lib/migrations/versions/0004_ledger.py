"""The tamper-evident ledger: each tenant's append-only Merkle log of emission-entry changes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

Every INSERT, UPDATE and DELETE of ``emission_entries``, by any role and whatever SQL it sends,
appends one leaf per row to the tenant's log: statement-level triggers with transition tables run a
SECURITY DEFINER function (owned by the admin) that writes the leaves, so tenant roles need no write
privilege on the log and cannot skip it. The leaf's bytes are canonical JSON built here in SQL
(``ledger_leaf_data``; the rules are in ``scope3lib.ledger.canonical_json``, which produces the same
bytes in Python), hashed as RFC 6962 leaves with PostgreSQL's ``sha256``.

The log tables refuse UPDATE, DELETE and TRUNCATE for every role, the admin included, by triggers;
tenant roles may only SELECT their own rows (row-level security as in migration 0001). Only a
superuser or the tables' owner can get round the triggers (``session_replication_role = replica``,
``ALTER TABLE ... DISABLE TRIGGER``, DROP): that is what signed checkpoints are for, and
``scope3 ledger verify`` names what such a change altered.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from scope3lib.migrations.ddl import execute_raw
from scope3lib.schema import group_role, role_prefix

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEDGER_TABLES = ("ledger_heads", "ledger_leaves", "ledger_keys", "ledger_checkpoints")

# The settings the canonical form depends on (to_json of timestamptz follows TimeZone, float8's text
# follows extra_float_digits, ...). Pinned on the trigger function; scope3lib.ledger.log.SESSION_SETTINGS
# sets the same for verification, and a test checks the two agree.
_CANONICAL_SETTINGS = (
    "SET TimeZone = 'UTC' SET extra_float_digits = 1 SET DateStyle = 'ISO, YMD' "
    "SET IntervalStyle = 'postgres' SET bytea_output = 'hex'"
)


def upgrade() -> None:
    op.create_table(
        "ledger_heads",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("size >= 0", name=op.f("ck_ledger_heads_size")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_ledger_heads_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_ledger_heads")),
    )
    op.create_table(
        "ledger_leaves",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("leaf_index", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(length=12), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entry", sa.Text(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("leaf_index >= 0", name=op.f("ck_ledger_leaves_leaf_index")),
        sa.CheckConstraint("event IN ('create', 'correct', 'recalculate', 'delete')",
                           name=op.f("ck_ledger_leaves_event")),
        sa.CheckConstraint("octet_length(leaf_hash) = 32", name=op.f("ck_ledger_leaves_leaf_hash")),
        # No cascade from tenants: an append-only log does not vanish with its tenant. Deleting a
        # tenant that has a ledger is refused until its log has been archived by a superuser.
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_ledger_leaves_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "leaf_index", name=op.f("pk_ledger_leaves")),
    )
    op.create_index("ix_ledger_leaves_entry", "ledger_leaves", ["tenant_id", "entry_id", "leaf_index"])
    op.create_table(
        "ledger_keys",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("key_name", sa.Text(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("octet_length(public_key) = 32", name=op.f("ck_ledger_keys_public_key")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_ledger_keys_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("tenant_id", "key_id", name=op.f("pk_ledger_keys")),
    )
    op.create_table(
        "ledger_checkpoints",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("tree_size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_id", sa.String(length=8), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.CheckConstraint("tree_size >= 0", name=op.f("ck_ledger_checkpoints_tree_size")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_ledger_checkpoints_tenant_id_tenants")),
        sa.ForeignKeyConstraint(["tenant_id", "key_id"], ["ledger_keys.tenant_id", "ledger_keys.key_id"],
                                name="fk_ledger_checkpoints_key"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_checkpoints")),
    )
    op.create_index("ix_ledger_checkpoints_tenant", "ledger_checkpoints", ["tenant_id", "id"])
    _functions()
    _triggers()
    _security()
    _log_existing_entries()


def _functions() -> None:
    # A number as canonical JSON: plain digits, no exponent, no trailing fractional zeros. float8's
    # text is its shortest round-trip form (extra_float_digits >= 1); through numeric it loses the
    # exponent. Not STRICT, so PostgreSQL inlines these into the generated expressions.
    execute_raw(
        r"""CREATE FUNCTION ledger_number(v double precision) RETURNS text
            LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT CASE WHEN v IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8) THEN '"' || v::text || '"'
                        ELSE pg_catalog.trim_scale(v::text::numeric)::text END $$"""
    )
    execute_raw(
        r"""CREATE FUNCTION ledger_number(v numeric) RETURNS text
            LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
            SELECT CASE WHEN v IN ('NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric) THEN '"' || v::text || '"'
                        ELSE pg_catalog.trim_scale(v)::text END $$"""
    )
    # Any JSON value in canonical form; used for columns of types without a direct rendering below.
    execute_raw(
        r"""CREATE FUNCTION ledger_canonical(j jsonb) RETURNS text
            LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
            BEGIN
                CASE pg_catalog.jsonb_typeof(j)
                    WHEN 'object' THEN
                        RETURN '{' || coalesce((
                            SELECT string_agg(to_json(k)::text || ':' || public.ledger_canonical(v), ','
                                              ORDER BY k COLLATE "C")
                              FROM pg_catalog.jsonb_each(j) AS m(k, v)
                             WHERE pg_catalog.jsonb_typeof(v) <> 'null'), '') || '}';
                    WHEN 'array' THEN
                        RETURN '[' || coalesce((
                            SELECT string_agg(coalesce(public.ledger_canonical(v), 'null'), ',' ORDER BY i)
                              FROM pg_catalog.jsonb_array_elements(j) WITH ORDINALITY AS a(v, i)), '') || ']';
                    WHEN 'number' THEN
                        RETURN public.ledger_number(j::numeric);
                    WHEN 'null' THEN
                        RETURN NULL;
                    ELSE
                        RETURN j::text;  -- a string (escaped by jsonb's output as RFC 8785 does), true or false
                END CASE;
            END $$"""
    )
    # The SQL expression that renders one emission_entries row (alias `alias`) as canonical JSON. It is
    # generated from the catalog at each use, so columns that later migrations add are covered without
    # touching the ledger; a NULL column is omitted, so adding a nullable column changes no entry.
    execute_raw(
        r"""CREATE FUNCTION ledger_entry_json_sql(alias text) RETURNS text
            LANGUAGE sql STABLE AS $$
            SELECT '(''{'' || array_to_string(ARRAY[' || string_agg(
                       quote_literal(to_json(a.attname::text)::text || ':') || ' || ' ||
                       CASE
                           WHEN a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'bool'::regtype)
                               THEN format('%I.%I::text', alias, a.attname)
                           WHEN a.atttypid IN ('float8'::regtype, 'numeric'::regtype)
                               THEN format('public.ledger_number(%I.%I)', alias, a.attname)
                           WHEN a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype,
                                               'date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype)
                               THEN format('to_json(%I.%I)::text', alias, a.attname)
                           ELSE format('public.ledger_canonical(to_jsonb(%I.%I))', alias, a.attname)
                       END,
                       ', ' ORDER BY a.attname COLLATE "C")
                   || '], '','') || ''}'')'
              FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = 'public.emission_entries'::regclass AND a.attnum > 0 AND NOT a.attisdropped $$"""
    )
    # The bytes of a leaf (scope3lib.ledger.leaf_data builds the same in Python). recorded_at is
    # rendered in UTC by to_char, independent of the session's TimeZone. format() builds the text in
    # one pass (verification rebuilds every leaf, so this is its hot path); NULL reason -> no member.
    execute_raw(
        r"""CREATE FUNCTION ledger_leaf_data(tenant_id bigint, leaf_index bigint, entry_id bigint, event text,
                                             actor text, reason text, recorded_at timestamptz, entry text)
            RETURNS bytea LANGUAGE sql STABLE PARALLEL SAFE AS $$
            SELECT convert_to(format(
                '{"actor":%s,"entry":%s,"entry_id":%s,"event":%s,"leaf_index":%s%s,"recorded_at":"%s","tenant_id":%s}',
                to_json(actor), entry, entry_id, to_json(event), leaf_index, ',"reason":' || to_json(reason)::text,
                to_char(recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), tenant_id), 'UTF8') $$"""
    )
    # The INSERT that appends one leaf per row of `src` for tenant $1 from index $2 ($3 event, $4 actor,
    # $5 reason, $6 time). Shared by the trigger (src = a transition table) and _log_existing_entries.
    execute_raw(
        r"""CREATE FUNCTION ledger_append_sql(src text) RETURNS text
            LANGUAGE sql STABLE AS $$
            SELECT format($f$
                INSERT INTO public.ledger_leaves
                       (tenant_id, leaf_index, entry_id, event, actor, reason, recorded_at, entry, leaf_hash)
                SELECT $1, q.i, q.id, $3, $4, $5, $6, q.e,
                       pg_catalog.sha256('\x00'::bytea || public.ledger_leaf_data($1, q.i, q.id, $3, $4, $5, $6, q.e))
                  FROM (SELECT s.id, $2 + row_number() OVER (ORDER BY s.id) - 1 AS i, %s AS e
                          FROM %s s WHERE s.tenant_id = $1) q
                $f$, public.ledger_entry_json_sql('s'), src) $$"""
    )
    # The same rendering compiled into a function of the row, so the trigger's statements are planned
    # once per session instead of at every statement. ledger_refresh() regenerates it, with the
    # signature of the columns it covers; the trigger checks that signature at each statement and falls
    # back to the generated SQL while it is stale (after a migration that added a column, until that
    # migration or an operator runs `SELECT ledger_refresh()`), so a new column is never left out.
    execute_raw(
        r"""CREATE FUNCTION ledger_columns_signature() RETURNS text
            LANGUAGE sql STABLE AS $$
            SELECT md5(string_agg(a.attname || ' ' || a.atttypid::regtype::text, ',' ORDER BY a.attname COLLATE "C"))
              FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = 'public.emission_entries'::regclass AND a.attnum > 0 AND NOT a.attisdropped $$"""
    )
    execute_raw(
        r"""CREATE FUNCTION ledger_refresh() RETURNS void
            LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
            BEGIN
                EXECUTE format('CREATE OR REPLACE FUNCTION public.ledger_entry_json(s public.emission_entries) '
                               'RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS %L',
                               'SELECT ' || public.ledger_entry_json_sql('s'));
                EXECUTE format('CREATE OR REPLACE FUNCTION public.ledger_entry_json_signature() '
                               'RETURNS text LANGUAGE sql IMMUTABLE AS %L',
                               'SELECT ' || quote_literal(public.ledger_columns_signature()));
            END $$"""
    )
    op.execute("SELECT ledger_refresh()")
    # The trigger function. SECURITY DEFINER: it writes the log, which tenant roles cannot. The head
    # row of each tenant is locked (INSERT ... ON CONFLICT DO UPDATE) until the transaction ends, so
    # indices are gap-free and in commit order even under concurrent writers; a rolled-back change
    # rolls its leaves and its head back with it. recorded_at is read after the lock, so it grows with
    # the index. The event of an UPDATE is 'correct' unless the transaction says otherwise through
    # scope3.ledger_event, or opened a period recalculation (migration 0002's begin_period_recalculation).
    # The INSERT is written out for each transition table so that PL/pgSQL caches its plan.
    execute_raw(
        rf"""CREATE FUNCTION ledger_append() RETURNS trigger
             LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp {_CANONICAL_SETTINGS}
             AS $fn$
             DECLARE
                 v_event text;
                 v_reason text := nullif(current_setting('scope3.ledger_reason', true), '');
                 v_actor text := session_user;
                 v_recalc text;
                 v_static boolean;
                 v_src text := CASE TG_OP WHEN 'DELETE' THEN 'ledger_old' ELSE 'ledger_new' END;
                 r record;
                 v_start bigint;
                 v_at timestamptz;
             BEGIN
                 IF TG_OP = 'INSERT' THEN
                     v_event := 'create';
                 ELSIF TG_OP = 'DELETE' THEN
                     v_event := 'delete';
                 ELSE
                     -- Leaves are per entry id and tenant: an UPDATE may not change either.
                     IF EXISTS (SELECT 1 FROM ledger_new n
                                 WHERE NOT EXISTS (SELECT 1 FROM ledger_old o
                                                    WHERE o.id = n.id AND o.tenant_id = n.tenant_id)) THEN
                         RAISE EXCEPTION 'an emission entry keeps its id and tenant'
                             USING ERRCODE = 'check_violation',
                                   HINT = 'insert a new entry and delete the old one; the ledger records both';
                     END IF;
                     v_event := nullif(current_setting('scope3.ledger_event', true), '');
                     IF v_event IS NULL THEN
                         v_event := 'correct';
                         IF to_regclass('public.period_recalculations') IS NOT NULL THEN
                             BEGIN
                                 EXECUTE 'SELECT string_agg(reason, ''; '' ORDER BY id) '
                                         'FROM public.period_recalculations WHERE txid = txid_current()'
                                    INTO v_recalc;
                             EXCEPTION WHEN undefined_column THEN
                                 v_recalc := NULL;
                             END;
                             IF v_recalc IS NOT NULL THEN
                                 v_event := 'recalculate';
                                 v_reason := coalesce(v_reason, v_recalc);
                             END IF;
                         END IF;
                     ELSIF v_event NOT IN ('correct', 'recalculate') THEN
                         RAISE EXCEPTION 'unknown ledger event %: an update is a correct or a recalculate', v_event
                             USING ERRCODE = 'invalid_parameter_value';
                     END IF;
                 END IF;
                 -- ledger_columns_signature()'s query, inline so that PL/pgSQL keeps its plan.
                 SELECT md5(string_agg(a.attname || ' ' || a.atttypid::regtype::text, ','
                                       ORDER BY a.attname COLLATE "C")) = public.ledger_entry_json_signature()
                   INTO v_static
                   FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = 'public.emission_entries'::regclass AND a.attnum > 0 AND NOT a.attisdropped;
                 FOR r IN EXECUTE format('SELECT tenant_id, count(*) AS n FROM %I GROUP BY tenant_id '
                                         'ORDER BY tenant_id', v_src) LOOP
                     INSERT INTO public.ledger_heads AS h (tenant_id, size) VALUES (r.tenant_id, r.n)
                         ON CONFLICT (tenant_id) DO UPDATE SET size = h.size + excluded.size
                         RETURNING h.size - r.n INTO v_start;
                     v_at := clock_timestamp();
                     IF NOT v_static THEN
                         EXECUTE public.ledger_append_sql(v_src)
                             USING r.tenant_id, v_start, v_event, v_actor, v_reason, v_at;
                     ELSIF TG_OP = 'DELETE' THEN
                         INSERT INTO public.ledger_leaves
                                (tenant_id, leaf_index, entry_id, event, actor, reason, recorded_at, entry, leaf_hash)
                         SELECT r.tenant_id, q.i, q.id, v_event, v_actor, v_reason, v_at, q.e,
                                sha256('\x00'::bytea || public.ledger_leaf_data(r.tenant_id, q.i, q.id, v_event,
                                                                                 v_actor, v_reason, v_at, q.e))
                           FROM (SELECT s.id, v_start + row_number() OVER (ORDER BY s.id) - 1 AS i,
                                        public.ledger_entry_json(s) AS e
                                   FROM ledger_old s WHERE s.tenant_id = r.tenant_id) q;
                     ELSE
                         INSERT INTO public.ledger_leaves
                                (tenant_id, leaf_index, entry_id, event, actor, reason, recorded_at, entry, leaf_hash)
                         SELECT r.tenant_id, q.i, q.id, v_event, v_actor, v_reason, v_at, q.e,
                                sha256('\x00'::bytea || public.ledger_leaf_data(r.tenant_id, q.i, q.id, v_event,
                                                                                 v_actor, v_reason, v_at, q.e))
                           FROM (SELECT s.id, v_start + row_number() OVER (ORDER BY s.id) - 1 AS i,
                                        public.ledger_entry_json(s) AS e
                                   FROM ledger_new s WHERE s.tenant_id = r.tenant_id) q;
                     END IF;
                 END LOOP;
                 RETURN NULL;
             END $fn$"""
    )
    execute_raw(
        r"""CREATE FUNCTION ledger_refuse() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_NARGS > 0 THEN
                    RAISE EXCEPTION '% of % refused: %', TG_OP, TG_TABLE_NAME, TG_ARGV[0]
                        USING ERRCODE = 'insufficient_privilege';
                END IF;
                RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                    USING ERRCODE = 'insufficient_privilege',
                          HINT = 'the ledger only grows: change the emission entry and the ledger records the change';
            END $$"""
    )
    execute_raw(
        r"""CREATE FUNCTION ledger_heads_guard() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.tenant_id <> OLD.tenant_id OR NEW.size < OLD.size THEN
                    RAISE EXCEPTION 'ledger_heads only grows: tenant %, size % -> % refused',
                        OLD.tenant_id, OLD.size, NEW.size USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END $$"""
    )


def _triggers() -> None:
    # Transition tables allow one event per trigger, hence three; each sees every row the statement
    # changed (COPY and cascades included), and does nothing for a statement that changed none.
    op.execute(
        "CREATE TRIGGER ledger_append_insert AFTER INSERT ON emission_entries "
        "REFERENCING NEW TABLE AS ledger_new FOR EACH STATEMENT EXECUTE FUNCTION ledger_append()"
    )
    op.execute(
        "CREATE TRIGGER ledger_append_update AFTER UPDATE ON emission_entries "
        "REFERENCING OLD TABLE AS ledger_old NEW TABLE AS ledger_new "
        "FOR EACH STATEMENT EXECUTE FUNCTION ledger_append()"
    )
    op.execute(
        "CREATE TRIGGER ledger_append_delete AFTER DELETE ON emission_entries "
        "REFERENCING OLD TABLE AS ledger_old FOR EACH STATEMENT EXECUTE FUNCTION ledger_append()"
    )
    op.execute(
        "CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON emission_entries FOR EACH STATEMENT "
        "EXECUTE FUNCTION ledger_refuse('it would remove emission entries without a ledger record; "
        "DELETE them, which the ledger records')"
    )
    for table in ("ledger_leaves", "ledger_keys", "ledger_checkpoints"):
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse()")
    op.execute("CREATE TRIGGER ledger_heads_grow BEFORE UPDATE ON ledger_heads "
               "FOR EACH ROW EXECUTE FUNCTION ledger_heads_guard()")
    op.execute("CREATE TRIGGER ledger_heads_append_only BEFORE DELETE ON ledger_heads "
               "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse()")
    op.execute("CREATE TRIGGER ledger_heads_no_truncate BEFORE TRUNCATE ON ledger_heads "
               "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse()")


def _security() -> None:
    conn = op.get_bind()
    prefix = role_prefix(conn)
    rw, ro = group_role(prefix, "rw"), group_role(prefix, "ro")
    tenant_groups = f'"{rw}", "{ro}"'
    mine = "(SELECT tenant_of(current_user))"
    for table in LEDGER_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY tenant_isolation ON {table} TO {tenant_groups} "
            f"USING (tenant_id = {mine}) WITH CHECK (tenant_id = {mine})"
        )
        # Read only: leaves are written by ledger_append (as the owner), keys and checkpoints by the admin.
        op.execute(f"GRANT SELECT ON {table} TO {tenant_groups}")
    for fn in ("ledger_append()", "ledger_append_sql(text)", "ledger_refuse()", "ledger_heads_guard()",
               "ledger_refresh()"):
        op.execute(f"REVOKE ALL ON FUNCTION {fn} FROM PUBLIC")


def _log_existing_entries() -> None:
    # Entries written before the ledger existed get a 'create' leaf now (empty on a fresh database),
    # so verification covers them from here on; the reason says when they were really recorded.
    execute_raw(
        r"""DO $do$
             DECLARE r record; v_sql text := public.ledger_append_sql('public.emission_entries');
             BEGIN
                 SET LOCAL TimeZone = 'UTC'; SET LOCAL extra_float_digits = 1; SET LOCAL DateStyle = 'ISO, YMD';
                 SET LOCAL IntervalStyle = 'postgres'; SET LOCAL bytea_output = 'hex';
                 FOR r IN SELECT tenant_id, count(*) AS n FROM public.emission_entries GROUP BY tenant_id
                          ORDER BY tenant_id LOOP
                     INSERT INTO public.ledger_heads (tenant_id, size) VALUES (r.tenant_id, r.n);
                     EXECUTE v_sql USING r.tenant_id, 0::bigint, 'create', session_user::text,
                         'entry existed before the ledger was enabled (migration 0004)', clock_timestamp();
                 END LOOP;
             END $do$"""
    )


def downgrade() -> None:
    for table in ("ledger_leaves", "ledger_keys", "ledger_checkpoints"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
    for name in ("ledger_append_insert", "ledger_append_update", "ledger_append_delete", "ledger_no_truncate"):
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON emission_entries")
    op.drop_index("ix_ledger_checkpoints_tenant", table_name="ledger_checkpoints")
    op.drop_table("ledger_checkpoints")
    op.drop_table("ledger_keys")
    op.drop_index("ix_ledger_leaves_entry", table_name="ledger_leaves")
    op.drop_table("ledger_leaves")
    op.drop_table("ledger_heads")
    for fn in ("ledger_append()", "ledger_refresh()", "ledger_entry_json(emission_entries)",
               "ledger_entry_json_signature()", "ledger_columns_signature()", "ledger_append_sql(text)",
               "ledger_leaf_data(bigint, bigint, bigint, text, text, text, timestamptz, text)",
               "ledger_entry_json_sql(text)", "ledger_canonical(jsonb)",
               "ledger_number(numeric)", "ledger_number(double precision)", "ledger_refuse()", "ledger_heads_guard()"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
