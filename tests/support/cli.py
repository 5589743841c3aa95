"""Run the `superseller` CLI in a child process against a given database."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.procs import ROOT


def cli(db_url, *args, check=False, env=None):
    env = {**os.environ, "DATABASE_URL": db_url, **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "superseller.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc
