"""The sandbox in its own process, for the benchmarks that measure against it over real HTTP."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from superseller.sandbox.server import free_port


def start_sandbox(
    listings: int, history_days: int, orders_per_day: int, deadline_s: float = 30.0
) -> tuple[subprocess.Popen, str]:
    """Start `superseller sandbox serve` on a free port; return the process and its URL once it
    answers (the caller terminates the process)."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "superseller.cli",
            "sandbox",
            "serve",
            "--port",
            str(port),
            "--listings",
            str(listings),
            "--history-days",
            str(history_days),
            "--orders-per-day",
            str(orders_per_day),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            httpx.get(f"{url}/_sandbox/stats", timeout=1)
            return proc, url
        except httpx.HTTPError:
            if proc.poll() is not None:
                break
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("sandbox did not start")
