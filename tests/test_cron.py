"""Cron parsing and fire times: AWS syntax, time zones, DST gaps and folds."""

from datetime import UTC, datetime

import pytest

from superseller.jobs.cron import InvalidSchedule, fire_times_between, next_fire, normalize_cron


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("0 3 * * *", "0 3 * * *"),
        ("  0   3 * * *  ", "0 3 * * *"),
        ("cron(0 6 * * ? *)", "0 6 * * *"),  # the seeds' EventBridge expression
        ("cron(0 4 ? * 1 *)", "0 4 * * 0"),  # AWS Sunday is 1
        ("cron(0 6 ? * MON *)", "0 6 * * MON"),
        ("cron(15 10 ? * 2-6 *)", "15 10 * * 1-5"),
    ],
)
def test_normalize_accepts_standard_and_aws_forms(given, expected):
    assert normalize_cron(given) == expected


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("", "empty"),
        ("0 3 * *", "must have 5 fields"),
        ("0 25 * * *", "invalid cron expression"),
        ("cron(0 6 * * ? 2027)", "year field"),
        ("cron(0 6 * * 9 *)", "out of range 1-7"),
        ("cron(0 6 * *)", "must have 6 fields"),
    ],
)
def test_invalid_cron_is_a_clear_error(bad, message):
    with pytest.raises(InvalidSchedule, match=message):
        normalize_cron(bad)


def test_sao_paulo_0300_is_0600_utc():
    after = datetime(2026, 1, 19, 0, 0, tzinfo=UTC)
    assert next_fire("0 3 * * *", "America/Sao_Paulo", after) == datetime(
        2026, 1, 19, 6, 0, tzinfo=UTC
    )


def test_dst_gap_tick_runs_at_end_of_gap():
    # New York springs forward 2026-03-08 02:00 -> 03:00 (EST -5 -> EDT -4).
    ticks = fire_times_between(
        "30 2 * * *",
        "America/New_York",
        datetime(2026, 3, 7, 0, tzinfo=UTC),
        datetime(2026, 3, 10, tzinfo=UTC),
    )
    assert ticks == [
        datetime(2026, 3, 7, 7, 30, tzinfo=UTC),  # 02:30 EST
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # the gap: 03:00 EDT
        datetime(2026, 3, 9, 6, 30, tzinfo=UTC),  # 02:30 EDT
    ]


def test_dst_fold_fixed_time_runs_once():
    # Lisbon falls back 2026-10-25 02:00 -> 01:00: 01:30 happens twice.
    ticks = fire_times_between(
        "30 1 * * *",
        "Europe/Lisbon",
        datetime(2026, 10, 24, 12, tzinfo=UTC),
        datetime(2026, 10, 26, 12, tzinfo=UTC),
    )
    assert ticks == [
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
    ]
