"""Real `superseller worker` processes against a sandbox, for the fleet tests and bench."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.ml import sandbox_env
from tests.support.procs import ROOT, start_cli


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
    settings = {
        "PYTHONPATH": ROOT / "src",
        "DATA_DIR": data_dir,
        "ML_CONCURRENCY": 8,
        "JOB_POLL_S": 0.1,
        "JOB_SQLITE_POLL_S": 0.1,
        "JOB_HEARTBEAT_S": 0.2,
        "JOB_RESCUE_AFTER_S": 2,
        **env,
    }
    return start_cli(
        db_url,
        *args,
        env=sandbox_env(sb_url, **settings),
        cwd=data_dir,
        stdout=subprocess.DEVNULL,
        stderr=open(_log_path(data_dir), "a"),  # noqa: SIM115 - the child owns it
    )


def _log_path(data_dir: Path) -> Path:
    return data_dir / "workers.log"


def log_of(data_dir: Path, tail: int = 3000) -> str:
    """The end of the workers' log (for an assertion's message)."""
    path = _log_path(data_dir)
    return path.read_text()[-tail:] if path.exists() else ""
