"""Disconnecting a store's Mercado Livre account.

The account row goes, with its (encrypted) tokens: nothing can call Mercado Livre for
the store any more, and the same Mercado Livre account can then be connected to another
store. Everything already imported stays (listings, orders, metrics; listings just lose
the link to the account row). The nightly fan-out only queues connected stores, and a
sync already queued for the store finishes at once as skipped (see sync.py), so a
disconnected store fails no job. Connecting again starts like a first connection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Engine, delete, select, update

from superseller.db.schema import listings, marketplace_accounts

log = logging.getLogger("superseller.mercadolivre.disconnect")


class NotConnected(Exception):
    """The store has no Mercado Livre account to disconnect."""

    def __init__(self, tenant_id: str):
        super().__init__(f"tenant {tenant_id} has no Mercado Livre account")
        self.tenant_id = tenant_id


@dataclass(frozen=True)
class Disconnected:
    tenant_id: str
    ml_user_ids: list[int]


def disconnect_account(engine: Engine, tenant_id: str, actor: str) -> Disconnected:
    """Forget the tenant's Mercado Livre account(s) and their tokens; keep its data.
    `actor` (an email, `cli`) is logged, never a token."""
    with engine.begin() as conn:
        rows = conn.execute(
            select(marketplace_accounts.c.id, marketplace_accounts.c.ml_user_id)
            .where(marketplace_accounts.c.tenant_id == tenant_id)
            .order_by(marketplace_accounts.c.id)
            .with_for_update()  # a token refresh holds this lock: wait for it to finish
        ).all()
        if not rows:
            raise NotConnected(tenant_id)
        ids = [r.id for r in rows]
        # The foreign key says SET NULL; SQLite enforces it only with its pragma on.
        conn.execute(update(listings).where(listings.c.account_id.in_(ids)).values(account_id=None))
        conn.execute(delete(marketplace_accounts).where(marketplace_accounts.c.id.in_(ids)))
    users = [int(r.ml_user_id) for r in rows]
    log.info("tenant %s: Mercado Livre account %s disconnected by %s", tenant_id, users, actor)
    return Disconnected(tenant_id, users)
