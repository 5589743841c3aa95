"""A real scheduler process as `serve --role scheduler` runs it (`run_forever`: it rides
out database errors), with a clock the test advances:
`python -m tests.support.run_scheduler_forever URL CLOCK_FILE`; it stops when
CLOCK_FILE.stop exists."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from superseller.db.engine import make_engine
from superseller.jobs.scheduler import Scheduler
from tests.support.handlers import build_registry
from tests.support.run_scheduler import FileClock


def main() -> int:
    scheduler = Scheduler(make_engine(sys.argv[1]), build_registry(), FileClock(Path(sys.argv[2])))
    loop = threading.Thread(target=scheduler.run_forever, kwargs={"interval_s": 0.05})
    loop.start()
    stop = Path(sys.argv[2] + ".stop")
    while not stop.exists():
        time.sleep(0.05)
    scheduler.stop()
    loop.join()
    return 0


if __name__ == "__main__":
    sys.exit(main())
