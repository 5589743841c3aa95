"""The sandbox's revocation, as Mercado Livre's: revoking kills the seller's grant (its
tokens and refresh token stop working for good), but a seller who authorizes the app again
gets a new grant that works. Before, a revoked user could never authorize again, so
`superseller sandbox connect` failed forever after one `/_sandbox/revoke`."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from superseller.mercadolivre.connect import connect_sandbox
from superseller.tenants import create_tenant
from tests.support.ml import CLIENT_ID, CLIENT_SECRET, sandbox, settings_for

REDIRECT = "http://localhost/callback"


def _authorize(sb) -> str:
    """The seller approves the app (the sandbox approves at once): the code it hands back."""
    resp = httpx.get(
        f"{sb.url}/authorization",
        params={"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT},
    )
    assert resp.status_code in (302, 307), resp.text
    return httpx.URL(resp.headers["location"]).params["code"]


def _token(sb, **form) -> httpx.Response:
    return httpx.post(
        f"{sb.url}/oauth/token",
        data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **form},
    )


def _exchange(sb, code: str) -> httpx.Response:
    return _token(sb, grant_type="authorization_code", code=code, redirect_uri=REDIRECT)


def _refresh(sb, refresh_token: str) -> httpx.Response:
    return _token(sb, grant_type="refresh_token", refresh_token=refresh_token)


def _me(sb, access_token: str) -> int:
    return httpx.get(
        f"{sb.url}/users/me", headers={"Authorization": f"Bearer {access_token}"}
    ).status_code


def test_a_revoked_seller_authorizes_again_and_only_the_new_grant_works():
    with sandbox(listings=3) as sb:
        old = _exchange(sb, _authorize(sb))
        assert old.status_code == 200, old.text
        old = old.json()
        assert _me(sb, old["access_token"]) == 200
        pending = _authorize(sb)  # a code handed out under the old grant, not yet exchanged

        assert httpx.post(f"{sb.url}/_sandbox/revoke", json={}).is_success
        refused = _refresh(sb, old["refresh_token"])
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        assert _me(sb, old["access_token"]) == 401

        # The seller authorizes the app again: a new grant, whose tokens work.
        new = _exchange(sb, _authorize(sb))
        assert new.status_code == 200, new.text
        new = new.json()
        assert new["user_id"] == old["user_id"]
        assert _me(sb, new["access_token"]) == 200
        rotated = _refresh(sb, new["refresh_token"])
        assert rotated.status_code == 200, rotated.text
        assert _me(sb, rotated.json()["access_token"]) == 200

        # The old grant stays dead: its refresh token, its access token, its pending code.
        again = _refresh(sb, old["refresh_token"])
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        assert _me(sb, old["access_token"]) == 401
        assert _exchange(sb, pending).status_code == 400


def test_sandbox_connect_works_again_after_a_revocation(engine, tmp_path):
    """What `superseller sandbox connect --tenant X` runs: it connected once, the seller
    revoked the app, and connecting again succeeds (it exited 1 for good before)."""
    with sandbox(listings=3) as sb:
        settings = settings_for(sb, tmp_path)
        create_tenant(engine, "Loja", tenant_id="t1")
        now = datetime.now(UTC)
        first = connect_sandbox(engine, settings, "t1", now)
        assert httpx.post(f"{sb.url}/_sandbox/revoke", json={}).is_success
        assert connect_sandbox(engine, settings, "t1", now) == first
        assert sb.state.revoked == set()
