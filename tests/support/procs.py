"""Real worker and `superseller` processes for crash, signal and concurrency tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_worker(db_url: str, **env: str) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **{k: str(v) for k, v in env.items()}}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.run_worker", db_url],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def start_cli(
    db_url: str,
    *args: str,
    env: dict[str, str],
    cwd: Path = ROOT,
    stdout=subprocess.PIPE,
    stderr=subprocess.PIPE,
    unset: tuple[str, ...] = (),
) -> subprocess.Popen:
    """`superseller <args>` as a child process against `db_url`: this process's environment
    (less the names in `unset`) plus `env`; its output, text, to `stdout` and `stderr` (pipes
    by default; DEVNULL or a file for a long-running one whose output nobody reads)."""
    inherited = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.Popen(
        [sys.executable, "-m", "superseller.cli", *args],
        cwd=cwd,
        env={**inherited, "DATABASE_URL": db_url, **env},
        stdout=stdout,
        stderr=stderr,
        text=True,
    )


def stop(proc: subprocess.Popen, timeout: float = 30) -> int:
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError("worker process did not stop after SIGTERM") from None
