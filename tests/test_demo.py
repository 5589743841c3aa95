"""`superseller demo` as a user runs it: a subprocess whose dashboard answers, with a
working login, and that stops cleanly on Ctrl-C (SIGINT): a data directory the user named is
kept, the temporary one the demo made for itself is removed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from superseller.cli.demo_cmd import DEMO_PASSWORD, SELLER_LOGIN
from superseller.sandbox.server import free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("named_dir", [True, False], ids=["data-dir", "temporary"])
def test_demo_serves_a_live_dashboard_and_stops_on_ctrl_c(tmp_path, named_dir):
    port = free_port()
    temp = tmp_path / "tmp"  # where the demo's own temporary directory goes
    temp.mkdir()
    data = tmp_path / "demo"
    began = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "superseller.cli", "demo", "--port", str(port)]
        + (["--data-dir", str(data)] if named_dir else []),
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "120", "TMPDIR": str(temp)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"

    def answers():
        assert proc.poll() is None, proc.stdout.read()
        try:
            return httpx.get(f"{url}/entrar", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, timeout=120, interval=0.2, message="the demo dashboard")
        live_s = time.monotonic() - began
        with httpx.Client(base_url=url, timeout=10) as c:
            assert (
                c.post(
                    "/api/v1/auth/login", json={"email": SELLER_LOGIN, "password": DEMO_PASSWORD}
                ).status_code
                == 200
            )
            page = c.get("/?dias=30")
            assert page.status_code == 200 and 'data-key="revenue"' in page.text
            overview = c.get("/api/v1/metrics/overview", params={"days": 30}).json()
            assert overview["cards"]["orders"]["value"] > 0
        print(f"demo dashboard live after {live_s:.1f} s")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("the demo did not stop on Ctrl-C") from None
    assert proc.returncode in (0, 130), out[-2000:]
    assert "Painel:" in out and "Traceback" not in out
    if named_dir:
        assert (data / "superseller.db").is_file(), "the named data directory is kept"
    else:
        assert not list(temp.glob("superseller-demo-*")), "the demo's temporary data is removed"
