"""Pages answer bad addresses with their pt-BR error page whatever the client accepts, and
link to tenants whose ids need URL-encoding (made before ids were slugs)."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from superseller.config import Settings
from superseller.db.schema import tenants
from superseller.users.accounts import create_user
from superseller.wiring import build_registry
from tests.support import marketplace as mk
from tests.support.api import PASSWORD, client, serving

ADMIN, SELLER = "ops@superseller.dev", "ana@loja1.com"
ODD_ID = "a/b?c=d&e f"  # an id an older release accepted


@pytest.fixture
def url(engine, tmp_path):
    mk.tenant(engine, "t1")
    with engine.begin() as conn:
        conn.execute(
            insert(tenants).values(
                id=ODD_ID, name="Loja Antiga", timezone="UTC", created_at=datetime.now(UTC)
            )
        )
    mk.account(engine, ODD_ID)  # connected: the overview shows its period links
    create_user(engine, SELLER, PASSWORD, "seller", "t1")
    create_user(engine, ADMIN, PASSWORD, "admin")
    settings = Settings(data_dir=tmp_path)
    with serving(settings, engine, build_registry(settings)) as u:
        yield u


@pytest.mark.parametrize(
    ("who", "path", "field"),
    [
        (SELLER, "/?dias=abc", "dias"),
        (SELLER, "/?dias=-5", "dias"),
        (SELLER, "/anuncios?pagina=-1", "pagina"),
        (SELLER, "/anuncios?ordem=nada", "ordem"),
        (SELLER, "/metricas.csv?dias=0", "dias"),
        (ADMIN, "/jobs/abc", "job_id"),
    ],
)
def test_bad_page_addresses_get_the_portuguese_error_page(url, who, path, field):
    with client(url, who) as c:  # no Accept: text/html, as curl or a script
        page = c.get(path)
    assert page.status_code == 422
    assert page.headers["content-type"].startswith("text/html")
    assert "Endereço com valores inválidos" in page.text
    assert f"O valor de “{field}” não é válido." in page.text


def test_the_json_api_keeps_its_json_422(url):
    with client(url, SELLER) as c:
        api = c.get("/api/v1/metrics/overview", params={"days": "abc"})
    assert api.status_code == 422
    assert api.json()["error"]["fields"][0]["field"] == "query.days"


def test_links_to_a_tenant_with_an_odd_id_are_url_encoded(url):
    encoded = "a/b%3Fc%3Dd%26e%20f"
    with client(url, ADMIN) as c:
        page = c.get("/", params={"loja": ODD_ID})
        assert page.status_code == 200 and "Loja Antiga" in page.text
        assert f'href="/?loja={encoded}"' in page.text
        assert f'href="/anuncios?loja={encoded}"' in page.text
        assert f'href="/?dias=30&amp;loja={encoded}"' in page.text
        followed = c.get(f"/anuncios?loja={encoded}")
    assert followed.status_code == 200 and "Loja Antiga" in followed.text
