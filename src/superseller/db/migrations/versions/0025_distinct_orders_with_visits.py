"""The stored tenant days count each order once in the conversion's numerator
(`tenant_metrics_daily.orders_with_visits`): the rollup summed its listing rows' orders, so
an order of two listings counted twice. Recomputed in place by the rule of that day's
rebuild (metrics/rebuild.py `_ROLLUP_SQL`), frozen here as migrations are: counted statuses
paid and partially_refunded, BRL items only, an order counts when one of its items' listing
rows of its day has known visits. Only rows whose figure changes are written.

Revision ID: 0025
Revises: 0024
"""

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

_DISTINCT = """(
    SELECT COUNT(DISTINCT o.id)
    FROM orders o
    JOIN order_items oi ON oi.order_id = o.id
    JOIN listing_metrics_daily lm
      ON lm.tenant_id = o.tenant_id AND lm.listing_id = oi.listing_id
     AND lm.date = o.created_local_date AND lm.visits IS NOT NULL
    WHERE o.tenant_id = tenant_metrics_daily.tenant_id
      AND o.created_local_date = tenant_metrics_daily.date
      AND o.status IN ('paid', 'partially_refunded')
      AND COALESCE(oi.currency, o.currency, 'BRL') = 'BRL'
)"""


def upgrade() -> None:
    op.execute(
        f"UPDATE tenant_metrics_daily SET orders_with_visits = {_DISTINCT} "
        f"WHERE orders_with_visits <> {_DISTINCT}"
    )


def downgrade() -> None:
    """The double count is not restored: the corrected figure is kept."""
