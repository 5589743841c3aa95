"""`superseller serve` and ML_REDIRECT_URI: unset, Mercado Livre is sent back to the server
that started the connection (its port, or PUBLIC_URL), not to the default's :8000."""

import signal
import subprocess

import httpx
import pytest

from superseller.cli.serve_cmd import own_redirect_uri
from superseller.sandbox.server import free_port
from superseller.tenants import create_tenant
from superseller.users.accounts import create_user
from tests.support.ml import sandbox, sandbox_env
from tests.support.procs import start_cli
from tests.support.waiting import wait_until

PASSWORD = "correct horse battery"
CALLBACK = "/api/v1/mercadolivre/callback"


def serve(db_url, tmp_path, sb, port: int, **extra: str) -> subprocess.Popen:
    proc = start_cli(
        db_url,
        "serve",
        "--port",
        str(port),
        env=sandbox_env(sb.url, DATA_DIR=tmp_path, **extra),
        stdout=subprocess.DEVNULL,
        unset=("ML_REDIRECT_URI", "PUBLIC_URL"),
    )

    def ready():
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout=30, message="serve ready")
    return proc


def stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    return err


def test_unset_the_redirect_uri_names_the_serving_port(db_url, engine, tmp_path):
    """`serve --port P` without ML_REDIRECT_URI: the authorization request names P's
    callback, Mercado Livre sends the seller back there, and the connection completes."""
    create_tenant(engine, "Loja", tenant_id="t1")
    create_user(engine, "ana@loja.com", PASSWORD, "seller", "t1")
    port = free_port()
    assert port != 8000
    url = f"http://127.0.0.1:{port}"
    with sandbox(listings=2) as sb:
        proc = serve(db_url, tmp_path, sb, port)
        try:
            with httpx.Client(base_url=url, timeout=20, headers={"Origin": url}) as browser:
                login = browser.post(
                    "/api/v1/auth/login", json={"email": "ana@loja.com", "password": PASSWORD}
                )
                assert login.status_code == 200
                start = browser.get("/api/v1/mercadolivre/connect")
                assert start.status_code == 303
                auth = httpx.URL(start.headers["location"])
                assert auth.params["redirect_uri"] == url + CALLBACK
                back = httpx.get(str(auth))  # the sandbox approves at once
                assert back.headers["location"].startswith(url + CALLBACK + "?code=")
                done = browser.get(back.headers["location"])
                assert done.status_code == 303, done.text
                assert done.headers["location"].startswith("/?conectado=1")
        finally:
            err = stop(proc)
    assert "ML_REDIRECT_URI names port" not in err


def test_a_redirect_uri_on_another_local_port_is_warned_about_once(db_url, tmp_path):
    port = free_port()
    with sandbox(listings=1) as sb:
        proc = serve(
            db_url,
            tmp_path,
            sb,
            port,
            ML_REDIRECT_URI=f"http://127.0.0.1:8000{CALLBACK}",
        )
        err = stop(proc)
    assert err.count("ML_REDIRECT_URI names port 8000") == 1, err[-2000:]
    assert f"serve listens on {port}" in err


@pytest.mark.parametrize(
    "public_url, host, port, expected",
    [
        ("https://superseller.example.com/", "0.0.0.0", 8652, "https://superseller.example.com"),
        ("", "0.0.0.0", 8652, "http://127.0.0.1:8652"),
        ("", "127.0.0.1", 8653, "http://127.0.0.1:8653"),
        ("", "::", 8654, "http://[::1]:8654"),
        ("", "10.0.0.5", 9000, "http://10.0.0.5:9000"),
    ],
)
def test_the_own_redirect_uri_prefers_public_url(public_url, host, port, expected):
    assert own_redirect_uri(public_url, host, port) == expected + CALLBACK
