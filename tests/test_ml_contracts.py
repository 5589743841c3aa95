"""Contract tests: real Mercado Livre bodies (tests/contracts/, each with its source) parsed
by the client, and the sandbox held to the same field names, types, nesting and codes."""

import asyncio
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from superseller.db.schema import order_items, orders
from superseller.mercadolivre.client import MLClient
from superseller.mercadolivre.errors import parse_error
from superseller.mercadolivre.upsert import listing_rows, parse_time, save_orders
from tests.support.marketplace import tenant
from tests.support.ml import sandbox

CONTRACTS = Path(__file__).parent / "contracts"
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def contract(name: str) -> dict:
    doc = json.loads((CONTRACTS / f"{name}.json").read_text())
    assert doc["source"].startswith("http"), name  # every body says where it came from
    return doc


def test_every_stored_body_names_its_source():
    names = sorted(p.stem for p in CONTRACTS.glob("*.json"))
    assert len(names) >= 15
    for name in names:
        doc = contract(name)
        assert isinstance(doc["status"], int) and "body" in doc


def _kind(v) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    return type(v).__name__


def shape_diff(real, ours, path="$") -> list[str]:
    """Where `ours` differs from `real`: a missing key, another type, another nesting, a
    date in another form. A null in the real body says nothing about the type; a null of
    ours stands for a real scalar only."""
    if real is None:
        return []
    if ours is None:
        return [] if _kind(real) in ("str", "number", "bool") else [f"{path}: null"]
    if _kind(real) != _kind(ours):
        return [f"{path}: {_kind(ours)} instead of {_kind(real)}"]
    if isinstance(real, dict):
        out = []
        for k, v in real.items():
            if k not in ours:
                out.append(f"{path}.{k}: missing")
            else:
                out += shape_diff(v, ours[k], f"{path}.{k}")
        return out
    if isinstance(real, list):
        return shape_diff(real[0], ours[0], f"{path}[0]") if real and ours else []
    if isinstance(real, str) and ISO.match(real):
        form = ISO.match(real).groups()
        theirs = ISO.match(ours)
        if theirs is None or bool(theirs.group(1)) != bool(form[0]) or theirs.group(2) != form[1]:
            return [f"{path}: date {ours!r} not in the form of {real!r}"]
    return []


def test_shape_diff_sees_what_it_must():
    real = contract("orders_search")["body"]
    bad = json.loads(json.dumps(real))
    bad["results"][0]["date_created"] = "2019-05-22T03:51:05.000-03:00"
    del bad["results"][0]["payments"]
    bad["paging"]["total"] = "1"
    assert shape_diff(real, bad) == [
        "$.results[0].date_created: date '2019-05-22T03:51:05.000-03:00' not in the form of "
        "'2019-05-22T03:51:05.000-04:00'",
        "$.results[0].payments: missing",
        "$.paging.total: str instead of number",
    ]
    assert shape_diff(real, real) == []


# -- the client parses the real bodies -------------------------------------------------


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        ("oauth_invalid_grant_description", "invalid_grant", "Error validating grant."),
        ("oauth_invalid_grant_message", "invalid_grant", "Error validating grant."),
        ("oauth_local_rate_limited", "local_rate_limited", ""),
        ("scan_invalid_scroll", "invalid.scroll.id", "Invalid scroll_id"),
        ("items_visits_too_many_ids", "validation_parameters", "maximum amount"),
        ("error_429", "too_many_requests", "Too Many Requests"),
        ("error_401", "unauthorized_request_error", "user not authorized"),
        ("error_500", "internal_server_error", "Internal Server Error"),
        ("error_403_policy", "PA_UNAUTHORIZED_RESULT_FROM_POLICIES", "At least one policy"),
    ],
)
def test_error_bodies_parse(name, code, message):
    doc = contract(name)
    err = parse_error(httpx.Response(doc["status"], json=doc["body"]))
    assert (err.status, err.code) == (doc["status"], code)
    assert err.message.startswith(message)
    assert err.retryable == (doc["status"] == 429 or doc["status"] >= 500)


class _Tokens:
    refreshes = 0

    def current(self):
        return "APP_USR-x", 1


def _client(routes: dict) -> MLClient:
    """The real client, its HTTP answered from stored bodies (path -> list of docs)."""
    calls = {k: list(v) for k, v in routes.items()}

    def answer(request: httpx.Request) -> httpx.Response:
        doc = calls[request.url.path].pop(0)
        return httpx.Response(doc["status"], json=doc["body"])

    client = MLClient("http://ml.invalid", _Tokens(), max_tries=2, backoff_base_s=0)
    client.http = httpx.AsyncClient(
        base_url="http://ml.invalid", transport=httpx.MockTransport(answer)
    )
    return client


def test_multiget_parses_and_keys_errors_by_the_entry_id():
    doc = contract("items_multiget")
    client = _client({"/items": [doc]})
    ids = ["MLA678912345", "MLA123456789"]
    bodies, errors = asyncio.run(client.items(ids))
    assert [b["id"] for b in bodies] == ["MLA678912345"]
    assert errors == [{"id": "MLA123456789", "code": 404, "error": "not_found"}]
    # Asked in another order, the errors still name the right item (not by position).
    client = _client({"/items": [doc]})
    _, errors = asyncio.run(client.items(list(reversed(ids))))
    assert [e["id"] for e in errors] == ["MLA123456789"]
    row = listing_rows(bodies, "t1", 1, "America/Sao_Paulo", datetime.now(UTC))[0]
    assert (row["price"], row["currency"], row["status"]) == (Decimal("180.00"), "ARS", "paused")
    assert (row["pictures_count"], row["attributes_count"]) == (2, 2)
    assert row["date_created"] == datetime(2017, 8, 16, 1, 51, 41, tzinfo=UTC)


def test_a_lost_scroll_restarts_the_scan_with_real_bodies():
    first = contract("items_search_scan")
    lost = contract("scan_invalid_scroll")
    end = {"status": 200, "body": {**first["body"], "results": [], "scroll_id": ""}}
    # The offset probe (total > 1000), a scan page, the lost scroll, the scan again, the end.
    client = _client({"/users/1/items/search": [first, first, lost, first, end]})
    assert asyncio.run(client.item_ids(1)) == first["body"]["results"]


def test_visits_parse():
    client = _client({"/items/MCO471870973/visits/time_window": [contract("visits_time_window")]})
    assert asyncio.run(client.visits("MCO471870973", 2)) == {"2021-08-04": 16, "2021-08-05": 10}


def test_the_documented_order_is_stored_on_its_local_day(engine):
    tenant(engine, "t1")
    body = contract("orders_search")["body"]
    now = datetime.now(UTC)
    with engine.begin() as conn:
        save_orders(conn, "t1", "America/Sao_Paulo", body["results"], now)
    with engine.connect() as conn:
        o = conn.execute(select(orders)).one()
        it = conn.execute(select(order_items)).one()
    # 03:51 at -04:00 is 07:51 UTC, 04:51 in São Paulo: the 22nd.
    assert o.date_created == datetime(2019, 5, 22, 7, 51, 5, tzinfo=UTC)
    assert o.created_local_date == date(2019, 5, 22)
    assert o.last_updated == parse_time("2020-02-14T02:55:49.811Z")  # date_last_updated
    assert (o.status, o.currency, o.total_amount) == ("paid", "BRL", Decimal("129.95"))
    assert (it.listing_external_id, it.quantity, it.unit_price, it.currency) == (
        "MLB1054990648",
        1,
        Decimal("129.95"),
        "BRL",
    )


# -- the sandbox answers in the same shapes --------------------------------------------


@pytest.fixture(scope="module")
def sb():
    with sandbox(listings=30, orders_per_day=60) as running:
        yield running


def _token(http: httpx.Client) -> dict:
    loc = http.get(
        "/authorization",
        params={"response_type": "code", "client_id": "sandbox-app", "redirect_uri": "http://x/cb"},
    )
    code = httpx.URL(loc.headers["location"]).params["code"]
    return http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": "sandbox-app",
            "client_secret": "sandbox-secret",
            "redirect_uri": "http://x/cb",
        },
    ).json()


@pytest.fixture(scope="module")
def api(sb):
    http = httpx.Client(base_url=sb.url, timeout=20)
    tok = _token(http)
    http.headers["Authorization"] = f"Bearer {tok['access_token']}"
    http.user_id, http.tokens = tok["user_id"], tok
    yield http
    http.close()


def same(name: str, resp: httpx.Response) -> None:
    doc = contract(name)
    assert resp.status_code == doc["status"], (name, resp.text[:300])
    assert shape_diff(doc["body"], resp.json()) == [], name


def test_sandbox_oauth_shapes(api, sb):
    same("oauth_token", httpx.Response(200, json=api.tokens))
    form = {"client_id": "sandbox-app", "client_secret": "sandbox-secret"}
    bad = [
        httpx.post(
            f"{sb.url}/oauth/token",
            data={**form, "grant_type": "refresh_token", "refresh_token": "TG-nope"},
        ).json()
        for _ in range(2)
    ]
    shapes = {frozenset(b) for b in bad}  # both real invalid_grant shapes appear
    assert shapes == {
        frozenset(contract("oauth_invalid_grant_description")["body"]),
        frozenset(contract("oauth_invalid_grant_message")["body"]),
    }
    httpx.post(f"{sb.url}/_sandbox/faults", json={"token_429": 1})
    same(
        "oauth_local_rate_limited",
        httpx.post(f"{sb.url}/oauth/token", data={**form, "grant_type": "refresh_token"}),
    )


def test_sandbox_listing_shapes(api, sb):
    path = f"/users/{api.user_id}/items/search"
    same("items_search", api.get(path, params={"offset": 0, "limit": 50}))
    scan = api.get(path, params={"search_type": "scan", "limit": 10})
    same("items_search_scan", scan)
    same(
        "scan_invalid_scroll",
        api.get(path, params={"search_type": "scan", "scroll_id": "bm90LWEtc2Nyb2xs"}),
    )
    ids = scan.json()["results"][:1] + ["MLB123456789"]
    same("items_multiget", api.get("/items", params={"ids": ",".join(ids)}))
    same("users_me", api.get("/users/me"))
    httpx.post(f"{sb.url}/_sandbox/items", json={"forbidden": [ids[0]]})
    try:
        same("error_403_policy", api.get(f"/items/{ids[0]}"))
    finally:
        httpx.post(f"{sb.url}/_sandbox/items", json={})


def test_sandbox_order_shapes(api):
    page = api.get("/orders/search", params={"seller": api.user_id, "limit": 5})
    same("orders_search", page)
    assert all(o["date_created"].endswith("-04:00") for o in page.json()["results"])


def test_sandbox_visits_shapes(api):
    ext = "MLB3000000001"
    same(
        "visits_time_window",
        api.get(f"/items/{ext}/visits/time_window", params={"last": 20, "unit": "day"}),
    )
    today = datetime.now(UTC).date()
    same(
        "items_visits",
        api.get(
            "/items/visits",
            params={"ids": ext, "date_from": str(today.replace(day=1)), "date_to": str(today)},
        ),
    )
    same("items_visits_too_many_ids", api.get("/items/visits", params={"ids": f"{ext},{ext}"}))
    totals = api.get("/visits/items", params={"ids": ext})
    assert totals.status_code == 200 and list(totals.json()) == [ext]
    assert (
        shape_diff(
            list(contract("visits_items_total")["body"].values()), list(totals.json().values())
        )
        == []
    )


def test_sandbox_error_shapes(api, sb):
    same("error_401", httpx.get(f"{sb.url}/users/me"))
    for name, fault in (("error_429", "rate_429"), ("error_500", "rate_500")):
        httpx.post(f"{sb.url}/_sandbox/faults", json={fault: 1.0, "retry_after_share": 0})
        try:
            same(name, api.get("/users/me"))
        finally:
            httpx.post(f"{sb.url}/_sandbox/faults", json={})
