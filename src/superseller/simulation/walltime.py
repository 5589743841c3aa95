"""Where a simulation's wall time went, from its logs (`bench/simulation.py --explain DIR`).

The driver logs every jump of the simulated clock (`idle at <now>: jump to <target>`) with
its wall time; the wall time between two jumps was spent at 1x on what was due at the
first one's target. Summed per simulated local hour, this gives the wall cost of each
hour of a day: the nightly sync wave versus the quiet hours of the 15-minute and hourly
schedules. Each quiet tick is then split into its steps from the processes' logs:
the scheduler's pass (`scheduler pass:`), the worker's attempts (`job N type success in
X ms`) and the driver noticing the engine idle again (the next jump).
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from superseller.simulation.faults import SAO_PAULO

_STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
_JUMP = re.compile(_STAMP + r" DEBUG idle at (\S+ \S+): jump to (\S+ \S+) \(")
_PASS = re.compile(_STAMP + r" \d+ superseller\.jobs\.scheduler INFO scheduler pass")
_RUN = re.compile(_STAMP + r" \d+ superseller\.jobs\.runs \w+ job (\d+) (\w+) (\w+) in (\d+) ms")
WAVE = range(1, 6)  # local hours of the nightly sync wave (02:00 sync, 03:00 rebuild)


def _wall(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


@dataclass
class Jump:
    wall: float
    sim_from: datetime
    sim_to: datetime


def jumps(workdir: Path) -> list[Jump]:
    out = []
    for line in (workdir / "driver.log").read_text().splitlines():
        m = _JUMP.match(line)
        if m:
            out.append(
                Jump(_wall(m[1]), datetime.fromisoformat(m[2]), datetime.fromisoformat(m[3]))
            )
    return out


def runs(workdir: Path) -> list[tuple[float, str, float]]:
    """(wall end, job type, duration s) per attempt, from every worker.log."""
    out = []
    path = workdir / "worker.log"
    if path.exists():
        for line in path.read_text().splitlines():
            m = _RUN.match(line)
            if m:
                out.append((_wall(m[1]), m[3], int(m[5]) / 1000))
    return out


def passes(workdir: Path) -> list[float]:
    path = workdir / "scheduler.log"
    if not path.exists():
        return []
    return [_wall(m[1]) for m in map(_PASS.match, path.read_text().splitlines()) if m]


def explain(workdir: Path) -> str:
    js = jumps(workdir)
    if len(js) < 2:
        return "fewer than two jumps in driver.log"
    # Wall between a jump and the next one, charged to the local hour of the first's target.
    per_hour: dict[datetime, float] = defaultdict(float)
    steps: list[tuple[Jump, Jump]] = list(zip(js, js[1:], strict=False))
    for a, b in steps:
        hour = a.sim_to.astimezone(SAO_PAULO).replace(minute=0, second=0, microsecond=0)
        per_hour[hour] += b.wall - a.wall
    quiet = [w for h, w in per_hour.items() if h.hour not in WAVE]
    wave = [w for h, w in per_hour.items() if h.hour in WAVE]
    lines = [
        f"{len(js)} jumps over {js[-1].wall - js[0].wall:.0f} s of wall, "
        f"{(js[-1].sim_to - js[0].sim_to) / timedelta(hours=1):.1f} simulated hours",
        f"quiet hours (local {WAVE.stop:02d}:00-{WAVE.start:02d}:00): {len(quiet)}, "
        f"wall per hour median {statistics.median(quiet):.2f} s, mean "
        f"{statistics.fmean(quiet):.2f} s, sum {sum(quiet):.0f} s"
        if quiet
        else "no quiet hours",
        f"wave hours (local {WAVE.start:02d}:00-{WAVE.stop:02d}:00): {len(wave)}, "
        f"sum {sum(wave):.0f} s"
        if wave
        else "no wave hours",
    ]
    # The quiet steps one by one: jump -> scheduler pass -> attempts -> next jump.
    ps = passes(workdir)
    rs = runs(workdir)
    sched_lat, job_wall, tail, gaps, per_type = [], [], [], [], defaultdict(list)
    for a, b in steps:
        if a.sim_to.astimezone(SAO_PAULO).hour in WAVE:
            continue
        gap = b.wall - a.wall
        gaps.append(gap)
        mine = [r for r in rs if a.wall <= r[0] <= b.wall + 0.002]
        p = [t for t in ps if a.wall <= t <= b.wall]
        if p:
            sched_lat.append(p[0] - a.wall)
        if mine:
            start = min(end - d for end, _, d in mine)
            end = max(end for end, _, _ in mine)
            job_wall.append(end - max(start, a.wall))
            tail.append(b.wall - end)
            for _, t, d in mine:
                per_type[t].append(d)
    if gaps:
        busy = [g for g in gaps if g > 0.05]
        lines.append(
            f"quiet steps: {len(gaps)} ({len(busy)} with something to run), wall "
            f"{sum(gaps):.0f} s; the 30 ms-or-less steps (nothing ran) "
            f"{sum(g for g in gaps if g <= 0.05):.1f} s"
        )

    def dist(name: str, xs: list[float]) -> None:
        if xs:
            q = statistics.quantiles(xs, n=10) if len(xs) > 1 else [xs[0]] * 9
            lines.append(
                f"  {name:<34} n={len(xs):4d} median {statistics.median(xs) * 1000:6.0f} ms"
                f"  p90 {q[8] * 1000:6.0f} ms  sum {sum(xs):6.1f} s"
            )

    dist("jump -> scheduler pass", sched_lat)
    dist("attempts' span (from the jump)", job_wall)
    dist("last attempt's end -> next jump", tail)
    for t, ds in sorted(per_type.items(), key=lambda kv: -sum(kv[1])):
        dist(f"job {t}", ds)
    return "\n".join(lines)
