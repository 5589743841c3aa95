"""The counting rules, defined once.

An order counts toward a day's metrics when its Mercado Livre status is
`paid` or `partially_refunded` (money was received and kept, at least in
part). `cancelled`, `invalid`, `payment_required`, `payment_in_process`,
`confirmed` and anything else count nowhere. Shipment states (`shipped`,
`delivered`) are not order statuses in the API, so they never appear here.

The day is the order's creation time (`date_created`) in the tenant's time
zone (default America/Sao_Paulo): a sale at 23:30 BRT counts on that BRT day.
Revenue is the sum of quantity x unit price of the order's items (no shipping).
"""

from superseller.limits import MAX_RANGE_DAYS  # noqa: F401 - re-exported; limits is its home

COUNTED_ORDER_STATUSES = ("paid", "partially_refunded")
# Tenant totals are in this currency; sales in any other are kept apart, never mixed in.
MAIN_CURRENCY = "BRL"
