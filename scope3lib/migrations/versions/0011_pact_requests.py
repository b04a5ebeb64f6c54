"""Data requests sent over PACT: the RequestCreated event's id, and a partner's reason for rejecting one.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06

A request of the PACT channel is sent as a ``RequestCreated`` event; the partner's answer names that event's
id (``requestEventId``), which is how the tenant's ``/pact/3/events`` finds the request it answers
(``pact_event_id``, unique per tenant; NULL until the event was delivered). A ``RequestRejected`` answer marks
the request rejected and keeps the partner's reason (``rejected_reason``).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from scope3lib.schema import tenant_groups

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("data_requests", sa.Column("pact_event_id", sa.Text(), nullable=True))
    op.add_column("data_requests", sa.Column("rejected_reason", sa.Text(), nullable=True))
    op.create_index("ix_data_requests_pact_event", "data_requests", ["tenant_id", "pact_event_id"], unique=True,
                    postgresql_where=sa.text("pact_event_id IS NOT NULL"))
    rw, _ = tenant_groups(op.get_bind())
    op.execute(f'GRANT UPDATE (pact_event_id, rejected_reason) ON data_requests TO "{rw}"')


def downgrade() -> None:
    op.drop_index("ix_data_requests_pact_event", "data_requests")
    op.drop_column("data_requests", "rejected_reason")
    op.drop_column("data_requests", "pact_event_id")
