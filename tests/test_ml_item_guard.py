"""An older Mercado Livre item body never overwrites a newer one (by the item's
`last_updated`): not a late `items` notification, not a sync page fetched before an edit.
On SQLite and PostgreSQL, over real HTTP (sandbox, webhook, worker)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
from sqlalchemy import select

from superseller.db.schema import listings
from superseller.mercadolivre.upsert import listing_rows, save_listings
from tests.support import marketplace as mk
from tests.support.notify import WEBHOOK, notification_loop
from tests.support.waiting import wait_until
from tests.test_ml_notifications import _sync_and_wait

ITEM = "MLB3000000003"
OTHER = "MLB3000000005"


def _listing(engine, ext: str):
    with engine.connect() as conn:
        return conn.execute(select(listings).where(listings.c.external_id == ext)).first()


def _edit_and_wait(loop, price: float) -> None:
    loop.sandbox("POST", "/_sandbox/edit-item", json={"id": ITEM, "price": price})
    wait_until(
        lambda: (
            _listing(loop.engine, ITEM).price == Decimal(str(price)) and loop.unprocessed() == 0
        ),
        timeout=60,
        message=f"the edit to {price} applied",
    )


def test_late_item_bodies_never_roll_a_listing_back(engine, tmp_path):
    with notification_loop(engine, tmp_path, listings=20) as loop:
        _sync_and_wait(loop)
        synced = _listing(engine, ITEM)
        assert synced.ml_updated_at is not None  # the sync stores the item's last_updated
        loop.emit()
        _edit_and_wait(loop, 11.0)
        _edit_and_wait(loop, 12.0)
        newest = _listing(engine, ITEM)
        assert newest.ml_updated_at > synced.ml_updated_at

        # The first edit's notification arrives late, and its fetch answers the body
        # before the last edit (a lagging replica): the listing keeps the newer data.
        loop.sandbox("POST", "/_sandbox/stale-items", json={"ids": [ITEM], "count": 1})
        late = {
            "_id": str(uuid.uuid4()),
            "resource": f"/items/{ITEM}",
            "user_id": 123456789,
            "topic": "items",
            "application_id": loop.settings.ml_client_id,
            "attempts": 1,
        }
        assert httpx.post(loop.url + WEBHOOK, json=late).json() == {"status": "stored"}
        wait_until(lambda: loop.unprocessed() == 0, timeout=60, message="the late one processed")
        stale_left = loop.sandbox("POST", "/_sandbox/stale-items", json={})["stale"]
        assert stale_left[ITEM] == 0  # the older body was served, and refused
        after = _listing(engine, ITEM)
        assert (after.price, after.ml_updated_at) == (Decimal("12.00"), newest.ml_updated_at)

        # A full sync whose page of this item is older than what the notification stored
        # does not roll it back, and still writes what is newer (an edit not notified).
        loop.sandbox("POST", "/_sandbox/notifications", json={"callback_url": None})
        loop.sandbox("POST", "/_sandbox/edit-item", json={"id": OTHER, "price": 20.0})
        loop.sandbox("POST", "/_sandbox/stale-items", json={"ids": [ITEM], "count": 1})
        _sync_and_wait(loop)
        assert loop.sandbox("POST", "/_sandbox/stale-items", json={})["stale"][ITEM] == 0
        assert _listing(engine, ITEM).price == Decimal("12.00")
        assert _listing(engine, OTHER).price == Decimal("20.00")


def _body(title: str, last_updated) -> dict:
    body = {
        "id": ITEM,
        "title": title,
        "price": 10,
        "currency_id": "BRL",
        "status": "active",
        "date_created": "2026-01-02T10:00:00.000Z",
    }
    if last_updated is not ...:
        body["last_updated"] = last_updated
    return body


def test_missing_or_garbled_last_updated_is_unknown_and_written(engine):
    mk.tenant(engine, "g1")
    now = datetime.now(UTC)

    def save(title: str, last_updated) -> None:
        rows = listing_rows([_body(title, last_updated)], "g1", None, "America/Sao_Paulo", now)
        with engine.begin() as conn:
            save_listings(conn, rows)

    def stored():
        row = _listing(engine, ITEM)
        return row.title, row.ml_updated_at

    t2 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    save("newest", "2026-03-01T12:00:00.000Z")
    assert stored() == ("newest", t2)
    save("older", "2026-02-01T12:00:00.000Z")
    assert stored() == ("newest", t2)
    for i, garbled in enumerate([..., None, "", "ontem", "2026-13-45T00:00:00Z", 17, {}]):
        save(f"unknown {i}", garbled)  # unknown: written, as before dates were kept
        assert stored() == (f"unknown {i}", None)
    save("dated again", "2026-02-01T12:00:00.000Z")
    assert stored() == ("dated again", t2 - timedelta(days=28))
