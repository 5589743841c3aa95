"""Real `superseller worker` processes against a sandbox, for the fleet tests and bench."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.procs import ROOT


def cli_worker(
    db_url: str, sb_url: str, data_dir: Path, concurrency: int = 4, **env: str
) -> subprocess.Popen:
    """`superseller worker` as an operator runs it, pointed at the sandbox; `env` adds or
    overrides settings (ML_REQUESTS_PER_S, JOB_RESCUE_AFTER_S, ...). Its log goes to a
    file in `data_dir` (a pipe nobody reads fills up and stalls the worker): `log_of()`."""
    return cli_process(
        db_url, sb_url, data_dir, ["worker", "--concurrency", str(concurrency)], **env
    )


def cli_process(
    db_url: str, sb_url: str, data_dir: Path, args: list[str], **env: str
) -> subprocess.Popen:
    """`superseller <args>` with the settings of `cli_worker`."""
    full = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "DATABASE_URL": db_url,
        "DATA_DIR": str(data_dir),
        "ML_API_URL": sb_url,
        "ML_CLIENT_ID": "sandbox-app",
        "ML_CLIENT_SECRET": "sandbox-secret",
        "ML_CONCURRENCY": "8",
        "JOB_POLL_S": "0.1",
        "JOB_SQLITE_POLL_S": "0.1",
        "JOB_HEARTBEAT_S": "0.2",
        "JOB_RESCUE_AFTER_S": "2",
        **{k: str(v) for k, v in env.items()},
    }
    return subprocess.Popen(
        [sys.executable, "-m", "superseller.cli", *args],
        cwd=data_dir,
        env=full,
        stdout=subprocess.DEVNULL,
        stderr=open(_log_path(data_dir), "a"),  # noqa: SIM115 - the child owns it
        text=True,
    )


def _log_path(data_dir: Path) -> Path:
    return data_dir / "workers.log"


def log_of(data_dir: Path, tail: int = 3000) -> str:
    """The end of the workers' log (for an assertion's message)."""
    path = _log_path(data_dir)
    return path.read_text()[-tail:] if path.exists() else ""
