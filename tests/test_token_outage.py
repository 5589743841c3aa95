"""A database outage between Mercado Livre's answer to a refresh and our commit must not
disconnect the seller: Mercado Livre has already retired the old refresh token, so the
new pair is held and stored when the database is back, and the next refresh works.

PostgreSQL only: on SQLite the refresh runs inside the database's one write lock, so an
outage there delays the refresh instead of cutting it in half (found by the 30-day
simulation, where PostgreSQL sellers ended `reauth_required` after a night's outage)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from superseller.db.engine import make_engine
from superseller.db.schema import marketplace_accounts
from superseller.mercadolivre.connect import oauth_app
from superseller.mercadolivre.tokens import TokenCipher, TokenStore
from tests.support.faultproxy import FaultProxy
from tests.support.ml import connected_tenant, sandbox, settings_for
from tests.support.pgfault import terminate_backends
from tests.support.waiting import wait_until


def _expire(engine, sb) -> None:
    httpx.post(f"{sb.url}/_sandbox/expire-tokens")
    with engine.begin() as conn:
        conn.execute(
            marketplace_accounts.update().values(
                expires_at=datetime.now(UTC) - timedelta(minutes=1)
            )
        )


@pytest.mark.parametrize("backend", ["postgresql"])
def test_an_outage_right_after_a_refresh_keeps_the_rotated_token(
    backend, engine, db_url, tmp_path, caplog
):
    proxy = FaultProxy.for_url(db_url)
    through = make_engine(proxy.url(db_url))  # the product's connections go through the proxy
    try:
        with sandbox(listings=3) as sb:
            settings = settings_for(sb, tmp_path)
            account = connected_tenant(engine, settings)
            _expire(engine, sb)
            app = oauth_app(settings)
            answered = threading.Event()
            real_refresh = app.refresh

            def refresh_then_outage(refresh_token: str) -> dict:
                tokens = real_refresh(refresh_token)  # Mercado Livre has rotated now
                proxy.cut()
                terminate_backends(db_url.rsplit("/", 1)[1])
                answered.set()
                return tokens

            app.refresh = refresh_then_outage
            result: list = []
            worker = threading.Thread(
                target=lambda: result.append(
                    TokenStore(
                        through, account, app, TokenCipher(settings.encryption_key())
                    ).current()
                ),
                daemon=True,
            )
            worker.start()
            assert answered.wait(60), "the refresh never reached Mercado Livre"
            wait_until(lambda: "holding them until the database is back" in caplog.text, 30)
            assert worker.is_alive(), "the store gave up during the outage"
            proxy.restore()
            worker.join(60)
            assert result, "the refresh did not return after the database came back"
            with engine.connect() as conn:
                row = conn.execute(select(marketplace_accounts)).one()
            assert row.status == "connected" and row.token_version == 2
            assert sb.state.stats["refreshes"] == 1

            # The stored refresh token is the live one: the next refresh is accepted.
            app.refresh = real_refresh
            _expire(engine, sb)
            token, version = TokenStore(
                engine, account, app, TokenCipher(settings.encryption_key())
            ).current()
            assert version == 3 and sb.state.stats["refreshes"] == 2
            with engine.connect() as conn:
                assert conn.execute(select(marketplace_accounts.c.status)).scalar() == "connected"
    finally:
        through.dispose()
        proxy.close()
