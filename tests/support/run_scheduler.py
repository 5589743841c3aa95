"""A real scheduler process whose clock is a file the test advances:
`python -m tests.support.run_scheduler URL CLOCK_FILE`."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

from superseller.db.engine import make_engine
from superseller.jobs.scheduler import Scheduler
from tests.support.handlers import build_registry


class FileClock:
    def __init__(self, path: Path):
        self.path = path

    def now(self) -> datetime:
        return datetime.fromisoformat(self.path.read_text().strip())


def main() -> int:
    engine = make_engine(sys.argv[1])
    scheduler = Scheduler(engine, build_registry(), FileClock(Path(sys.argv[2])))
    stop = Path(sys.argv[2] + ".stop")
    while not stop.exists():
        scheduler.run_pass()
        time.sleep(0.005)
    return 0


if __name__ == "__main__":
    sys.exit(main())
