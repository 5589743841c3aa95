"""The promise over a month: `superseller simulate` for 30 days, seeds 1..3, both databases.

Each run is the real command in a child process (worker and scheduler are its own child
processes); this script makes a fresh PostgreSQL database per run, collects each run's
totals line and exit code, and prints one line per run plus a summary. Each run's output
(a line per simulated morning, with its wall time) goes to `<workdir>/stdout.txt` as it runs.

    uv run python bench/simulation.py [--days 30] [--seeds 1,2,3] [--tenants 20]
        [--large-listings 10000] [--small-listings 300] [--skip-sqlite] [--skip-pg]
        [--no-notifications]
    uv run python bench/simulation.py --explain WORKDIR   # where a run's wall time went
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def run(args, backend: str, seed: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix=f"sim-{backend}-{seed}-"))
    cmd = [
        sys.executable, "-m", "superseller.cli", "simulate",
        "--days", str(args.days), "--seed", str(seed), "--tenants", str(args.tenants),
        "--large-listings", str(args.large_listings),
        "--small-listings", str(args.small_listings),
        "--faults", args.faults, "--workdir", str(workdir),
    ]  # fmt: skip
    if args.no_notifications:
        cmd.append("--no-notifications")
    name = None
    if backend == "postgresql":
        name = f"sim_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        cmd += ["--database", f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"]
    started = time.monotonic()
    out = workdir / "stdout.txt"  # written as it goes: a run stopped early keeps its mornings
    with out.open("w") as sink:
        proc = subprocess.run(
            cmd, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    wall = time.monotonic() - started
    output = out.read_text()
    if name:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
    totals = re.search(r"^totals: .*", output, re.M)
    return {
        "backend": backend,
        "seed": seed,
        "exit": proc.returncode,
        "wall_s": wall,
        "totals": totals.group(0).split(";")[0] if totals else output.strip()[-200:],
        "workdir": workdir,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--tenants", type=int, default=20)
    p.add_argument("--large-listings", type=int, default=10_000)
    p.add_argument("--small-listings", type=int, default=300)
    p.add_argument("--faults", default="all")
    p.add_argument("--skip-sqlite", action="store_true")
    p.add_argument("--skip-pg", action="store_true")
    p.add_argument("--no-notifications", action="store_true")
    p.add_argument("--explain", type=Path, help="print where a run's wall time went, and stop")
    args = p.parse_args()
    if args.explain:
        from superseller.simulation.walltime import explain

        print(explain(args.explain))
        return
    backends = [
        b
        for b in ("sqlite", "postgresql")
        if not (b == "sqlite" and args.skip_sqlite or b == "postgresql" and args.skip_pg)
    ]
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for backend in backends:
            r = run(args, backend, seed)
            results.append(r)
            print(
                f"{r['backend']:<10} seed {r['seed']}  exit {r['exit']}  "
                f"{r['wall_s']:6.0f} s  {r['totals']}  ({r['workdir']})",
                flush=True,
            )
    passed = sum(1 for r in results if r["exit"] == 0)
    print(f"{passed}/{len(results)} runs passed")


if __name__ == "__main__":
    main()
