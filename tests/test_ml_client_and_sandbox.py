"""The error parser's variants, and the sandbox's faithfulness to the reference."""

import httpx
import pytest

from superseller.mercadolivre.errors import parse_error
from tests.support.ml import sandbox


def resp(status, body=None, text=None, headers=None):
    if body is not None:
        return httpx.Response(status, json=body, headers=headers)
    return httpx.Response(status, text=text or "", headers=headers)


@pytest.mark.parametrize(
    ("r", "status", "code", "message", "retry_after"),
    [
        (
            resp(400, {"message": "bad", "error": "bad_request", "status": 400, "cause": []}),
            400,
            "bad_request",
            "bad",
            None,
        ),
        (
            resp(
                400,
                {
                    "error_description": "Error validating grant.",
                    "error": "invalid_grant",
                    "status": 400,
                    "cause": [],
                },
            ),
            400,
            "invalid_grant",
            "Error validating grant.",
            None,
        ),
        (
            resp(400, {"message": "Error validating grant.", "error": "invalid_grant"}),
            400,
            "invalid_grant",
            "Error validating grant.",
            None,
        ),
        (
            resp(403, {"status": 403, "error": "Invalid scopes", "code": "FORBIDDEN"}),
            403,
            "Invalid scopes",
            "Forbidden",
            None,
        ),
        (
            resp(
                403,
                {
                    "status": 403,
                    "code": "PA_UNAUTHORIZED_RESULT_FROM_POLICIES",
                    "message": "At least one policy returned UNAUTHORIZED",
                },
            ),
            403,
            "PA_UNAUTHORIZED_RESULT_FROM_POLICIES",
            "At least one policy returned UNAUTHORIZED",
            None,
        ),
        (
            resp(
                404, {"message": "Item not found: CBT9", "error_status": "not_found", "status": 404}
            ),
            404,
            "not_found",
            "Item not found: CBT9",
            None,
        ),
        (
            resp(429, {"error": "local_rate_limited"}),
            429,
            "local_rate_limited",
            "Too Many Requests",
            None,
        ),
        (
            resp(
                429,
                {"message": "Too Many Requests", "error": "too_many_requests"},
                headers={"Retry-After": "3"},
            ),
            429,
            "too_many_requests",
            "Too Many Requests",
            3.0,
        ),
        (resp(403, text="<html>blocked</html>"), 403, "http_403", "<html>blocked</html>", None),
        (resp(502, text=""), 502, "http_502", "Bad Gateway", None),
    ],
)
def test_every_error_shape_parses_into_one_exception(r, status, code, message, retry_after):
    err = parse_error(r)
    assert (err.status, err.code, err.message, err.retry_after) == (
        status,
        code,
        message,
        retry_after,
    )
    assert err.retryable == (status == 429 or status >= 500)


@pytest.fixture(scope="module")
def sb():
    with sandbox(listings=1200, orders_per_day=50) as running:
        yield running


@pytest.fixture(scope="module")
def api(sb):
    c = httpx.Client(base_url=sb.url, timeout=60)  # a loaded CI machine
    loc = c.get(
        "/authorization",
        params={
            "response_type": "code",
            "client_id": "sandbox-app",
            "redirect_uri": "http://x/cb",
            "state": "s",
        },
    )
    assert loc.status_code == 307 and "state=s" in loc.headers["location"]
    code = httpx.URL(loc.headers["location"]).params["code"]
    tok = c.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": "sandbox-app",
            "client_secret": "sandbox-secret",
            "redirect_uri": "http://x/cb",
        },
    ).json()
    assert tok["expires_in"] == 21600 and tok["token_type"].lower() == "bearer"
    c.headers["Authorization"] = f"Bearer {tok['access_token']}"
    c.user_id = tok["user_id"]
    c.tokens = tok
    return c


def test_codes_and_refresh_tokens_are_single_use(api):
    form = {"client_id": "sandbox-app", "client_secret": "sandbox-secret"}
    first = api.post(
        "/oauth/token",
        data={**form, "grant_type": "refresh_token", "refresh_token": api.tokens["refresh_token"]},
    )
    assert first.status_code == 200
    again = api.post(
        "/oauth/token",
        data={**form, "grant_type": "refresh_token", "refresh_token": api.tokens["refresh_token"]},
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    api.headers["Authorization"] = f"Bearer {first.json()['access_token']}"


def test_offset_paging_stops_at_1000_and_scan_goes_on(api, sb, monkeypatch):
    path = f"/users/{api.user_id}/items/search"
    assert api.get(path, params={"offset": 1000, "limit": 50}).status_code == 400
    page = api.get(path, params={"search_type": "scan", "limit": 100}).json()
    assert page["paging"]["total"] == 1200 and len(page["results"]) == 100
    assert api.get(path, params={"search_type": "scan", "limit": 101}).status_code == 400
    seen = list(page["results"])
    scroll = page["scroll_id"]
    while True:
        nxt = api.get(
            path, params={"search_type": "scan", "limit": 100, "scroll_id": scroll}
        ).json()
        if not nxt["results"]:
            assert nxt["scroll_id"] == ""  # the end, as the real API writes it
            break
        seen += nxt["results"]
        scroll = nxt["scroll_id"]
    assert len(seen) == len(set(seen)) == 1200
    # Scrolls expire (5 minutes by default; at once here).
    assert sb.state.scroll_ttl_s == 300
    monkeypatch.setattr(sb.state, "scroll_ttl_s", -1)
    first = api.get(path, params={"search_type": "scan", "limit": 100}).json()["scroll_id"]
    expired = api.get(path, params={"search_type": "scan", "limit": 100, "scroll_id": first})
    # The docs' error table: 400 invalid.scroll.id, not a 404 a client could take for the end.
    assert expired.status_code == 400 and expired.json()["error"] == "invalid.scroll.id"


def test_multiget_limits_and_order(api):
    ids = [f"MLB{3000000000 + i}" for i in range(19)] + ["MLB1"]
    answer = api.get("/items", params={"ids": ",".join(ids)}).json()
    assert [a["code"] for a in answer] == [200] * 19 + [404]
    assert [a["body"]["id"] for a in answer[:19]] == ids[:19]
    too_many = api.get("/items", params={"ids": ",".join(ids + ["MLB3000000100"])})
    assert too_many.status_code == 400 and too_many.json()["error"] == "bad_request"


def test_orders_search_rules(api):
    assert api.get("/orders/search", params={"limit": 50}).status_code == 400  # seller needed
    big = api.get("/orders/search", params={"seller": api.user_id, "limit": 52})
    assert (
        big.status_code == 400 and big.json()["message"] == "Limit must be a lower or equal than 51"
    )
    page = api.get(
        "/orders/search", params={"seller": api.user_id, "limit": 50, "sort": "date_desc"}
    ).json()
    closed = [o["date_closed"] for o in page["results"]]
    assert closed == sorted(closed, reverse=True)
    assert page["results"][0]["date_created"].endswith("-04:00")  # as every real MLB example


def test_visits_are_sparse_unordered_and_n_plus_one_days(api):
    v = api.get("/items/MLB3000000001/visits/time_window", params={"last": 10}).json()
    assert v["date_from"][:10] < v["date_to"][:10]
    days = [r["date"][:10] for r in v["results"]]
    assert len(days) <= 11 and sum(r["total"] for r in v["results"]) == v["total_visits"]
    assert all(r["total"] > 0 for r in v["results"])
    over = api.get("/items/MLB3000000001/visits/time_window", params={"last": 151})
    assert over.status_code == 400 and "150 days" in over.json()["message"]


def test_data_keeps_moving(api, sb):
    params = {"seller": api.user_id, "limit": 1}
    before = api.get("/orders/search", params=params).json()["paging"]["total"]
    httpx.post(f"{sb.url}/_sandbox/advance", json={"seconds": 2 * 86400})
    after = api.get("/orders/search", params=params).json()["paging"]["total"]
    assert after > before


def test_order_the_seller_never_had_is_404_and_a_faulted_one_500(api, sb):
    """ML answers 404 for an id it cannot place (the demo's `/orders/2000000001` got a 500
    with "year out of range"); a 500 only comes from the fault mode for chosen ids."""
    for oid in ("2000000001", "1", "9999999999999999999"):
        r = api.get(f"/orders/{oid}")
        assert r.status_code == 404, (oid, r.text)
        assert r.json()["error"] == "not_found"
    real = api.get("/orders/search", params={"seller": api.user_id}).json()["results"][0]["id"]
    assert api.get(f"/orders/{real}").status_code == 200
    assert api.post("/_sandbox/faults", json={"order_fail_ids": [real]}).status_code == 200
    try:
        assert api.get(f"/orders/{real}").status_code == 500
    finally:
        api.post("/_sandbox/faults", json={})
    assert api.get(f"/orders/{real}").status_code == 200
