"""PACT v3 exchange: the footprints a tenant publishes, its partners' client credentials and access tokens,
and a record of every exchange in and out.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

A footprint is kept as the validated JSON the tenant published, beside the values the list filters of
``GET /3/footprints`` select on (lower-cased, as the filters compare without case), so a list reads a few
narrow columns and only the page's documents. Client secrets and access tokens are stored only as their
SHA-256 (256-bit random values need no slow hash), as the API keys are. Every table has the row-level
security of the other tenant tables; the API service (the tenant's read-write role) issues tokens, records
exchanges and takes imports from a notebook.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from scope3lib.migrations.ddl import tenant_fk
from scope3lib.schema import isolate_tenant_tables

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("pact_footprints", "pact_clients", "pact_tokens", "pact_exchanges")
_TEXTS = postgresql.ARRAY(sa.Text())


def _footprints() -> None:
    op.create_table(
        "pact_footprints",
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("product_ids", _TEXTS, nullable=False),
        sa.Column("company_ids", _TEXTS, nullable=False),
        sa.Column("classifications", _TEXTS, nullable=False),
        sa.Column("geography", sa.Text(), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported_by", sa.Text(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("status IN ('Active', 'Deprecated')", name=op.f("ck_pact_footprints_status")),
        tenant_fk("pact_footprints"),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_pact_footprints")),
    )
    op.create_index("ix_pact_footprints_order", "pact_footprints", ["tenant_id", "seq"])
    op.create_index("ix_pact_footprints_product_ids", "pact_footprints", ["product_ids"], postgresql_using="gin")
    op.create_index("ix_pact_footprints_company_ids", "pact_footprints", ["company_ids"], postgresql_using="gin")


def _clients() -> None:
    op.create_table(
        "pact_clients",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
        sa.Column("partner_url", sa.Text(), nullable=True),
        sa.Column("partner_client_id", sa.Text(), nullable=True),
        sa.Column("partner_client_secret", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("octet_length(secret_hash) = 32", name=op.f("ck_pact_clients_secret_hash")),
        tenant_fk("pact_clients"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pact_clients")),
        sa.UniqueConstraint("client_id", name=op.f("uq_pact_clients_client_id")),
    )
    op.create_index("uq_pact_clients_tenant_name", "pact_clients", ["tenant_id", "name"], unique=True,
                    postgresql_where=sa.text("revoked_at IS NULL"))
    op.create_table(
        "pact_tokens",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("client", sa.BigInteger(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("octet_length(token_hash) = 32", name=op.f("ck_pact_tokens_token_hash")),
        tenant_fk("pact_tokens"),
        sa.ForeignKeyConstraint(["client"], ["pact_clients.id"], name=op.f("fk_pact_tokens_client_pact_clients"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pact_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_pact_tokens_token_hash")),
    )


def _exchanges() -> None:
    op.create_table(
        "pact_exchanges",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("partner", sa.Text(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("event_type", sa.Text(), nullable=True),
        sa.Column("event_id", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("http_status", sa.SmallInteger(), nullable=True),
        sa.Column("summary", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("direction IN ('in', 'out')", name=op.f("ck_pact_exchanges_direction")),
        sa.CheckConstraint("status IN ('ok', 'refused', 'failed')", name=op.f("ck_pact_exchanges_status")),
        tenant_fk("pact_exchanges"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pact_exchanges")),
    )
    op.create_index("ix_pact_exchanges_tenant_at", "pact_exchanges", ["tenant_id", "at"])


def upgrade() -> None:
    _footprints()
    _clients()
    _exchanges()
    _security()


def _security() -> None:
    rw, ro = isolate_tenant_tables(op.get_bind(), _TABLES)
    for table in _TABLES:
        sequence = "pact_footprints_seq_seq" if table == "pact_footprints" else f"{table}_id_seq"
        op.execute(f'GRANT USAGE ON SEQUENCE {sequence} TO "{rw}"')
    op.execute(f'GRANT SELECT ON pact_footprints, pact_exchanges TO "{rw}", "{ro}"')
    # The partner's secret (what this host presents to the partner's token endpoint) is the service's alone:
    # the read-only role (dashboards, viewers' notebooks) sees every other column of a client.
    op.execute(f'GRANT SELECT ON pact_clients, pact_tokens TO "{rw}"')
    op.execute(f'GRANT SELECT (id, tenant_id, name, client_id, partner_url, partner_client_id, created_by, created_at, '
               f'revoked_at, last_used_at) ON pact_clients TO "{ro}"')
    # A notebook imports and deprecates (through scope3lib.pact.store); the API issues tokens, prunes expired
    # ones and records every exchange.
    op.execute(f'GRANT INSERT ON pact_footprints TO "{rw}"')
    op.execute(f'GRANT UPDATE (status, document, updated_at) ON pact_footprints TO "{rw}"')
    op.execute(f'GRANT UPDATE (last_used_at) ON pact_clients TO "{rw}"')
    op.execute(f'GRANT INSERT, DELETE ON pact_tokens TO "{rw}"')
    op.execute(f'GRANT INSERT ON pact_exchanges TO "{rw}"')


def downgrade() -> None:
    for table in ("pact_exchanges", "pact_tokens", "pact_clients", "pact_footprints"):
        op.drop_table(table)
