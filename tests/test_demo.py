"""`superseller demo` as a user runs it: a subprocess whose dashboard answers, with a
working login, and that stops cleanly on Ctrl-C (SIGINT): a data directory the user named is
kept, the temporary one the demo made for itself is removed; the sync's follow-ups run once."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from superseller.cli.demo_cmd import DEMO_PASSWORD, SELLER_LOGIN
from superseller.db.engine import make_engine
from superseller.db.schema import jobs
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


def test_the_demo_runs_its_syncs_follow_ups_once_and_leaves_nothing_queued(tmp_path):
    """The sync queues its rebuild and score; the demo runs those very jobs, not new ones
    beside them that the server's worker would then run a second time."""
    data = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "superseller.cli", "demo", "--once", "--data-dir", str(data)],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "120"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "joined job" not in proc.stderr  # the engine's English note stays out of the demo
    engine = make_engine(f"sqlite:///{data / 'superseller.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(jobs.c.type, jobs.c.status, jobs.c.payload)).all()
    finally:
        engine.dispose()
    assert {status for _, status, _ in rows} == {"completed"}, rows
    kinds = [t for t, _, _ in rows]
    assert kinds.count("sync_mercadolivre") == 1 and kinds.count("score_listings") == 1, kinds
    spans = [(p["from"], p["to"]) for t, _, p in rows if t == "metrics_aggregation"]
    assert spans and len(spans) == len(set(spans)), spans  # no span rebuilt twice
