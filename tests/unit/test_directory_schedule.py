"""When a directory's scheduled import is due (idp_core.directories.schedule): EventBridge
rate and cron expressions against the time of the last run, in UTC."""

from __future__ import annotations

import calendar
import time

import pytest

from idp_core.directories.schedule import (
    FIRST_RUN_WINDOW_SECONDS,
    MAX_LOOKBACK_SECONDS,
    RATE_GRACE_SECONDS,
    Cron,
    Rate,
    is_due,
    parse,
)
from idp_core.errors import BadRequest

MINUTE, HOUR, DAY = 60, 3600, 86400


def utc(text: str) -> float:
    """Seconds since the epoch of ``YYYY-MM-DD[ HH:MM[:SS]]`` in UTC."""
    for shape in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"):
        try:
            return float(calendar.timegm(time.strptime(text, shape)))
        except ValueError:
            continue
    raise ValueError(text)


# ---------------------------------------------------------------- rate


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(5 minutes)", 5 * MINUTE),
        ("rate(1 hour)", HOUR),
        ("rate(12 hours)", 12 * HOUR),
        ("rate(1 day)", DAY),
    ],
)
def test_a_rate_is_its_period_in_seconds(expression: str, seconds: int) -> None:
    assert parse(expression) == Rate(seconds)


def test_a_rate_that_never_ran_is_due_at_once() -> None:
    assert is_due("rate(1 day)", None, utc("2027-03-01 10:00"))


def test_a_rate_is_due_when_its_period_has_passed_since_the_last_run() -> None:
    last = utc("2027-03-01 10:00:30")
    assert not is_due("rate(1 hour)", last, last + 30 * MINUTE)
    assert not is_due("rate(1 hour)", last, last + HOUR - RATE_GRACE_SECONDS - 1)
    assert is_due("rate(1 hour)", last, last + HOUR)
    assert is_due("rate(1 hour)", last, last + 3 * HOUR)


def test_a_tick_a_little_early_still_runs_a_rate_so_it_does_not_slip_a_whole_tick() -> None:
    """Ticks are about five minutes apart, not exactly: rate(5 minutes) runs at every tick
    even when this tick came 20 seconds sooner after the last than the one before."""
    last = utc("2027-03-01 10:00:30")
    assert is_due("rate(5 minutes)", last, last + 5 * MINUTE - 20)
    # Never twice within one period, though.
    assert not is_due("rate(5 minutes)", last, last + 2 * MINUTE)


def test_a_last_run_in_the_future_clock_skew_is_not_due() -> None:
    now = utc("2027-03-01 10:00")
    assert not is_due("rate(1 hour)", now + 10 * MINUTE, now)
    assert not is_due("cron(* * * * ? *)", now + 10 * MINUTE, now)


# ---------------------------------------------------------------- cron


def test_a_daily_cron_is_due_once_after_its_minute() -> None:
    schedule = "cron(0 2 * * ? *)"
    last = utc("2027-03-01 02:03")
    assert not is_due(schedule, last, utc("2027-03-01 02:08"))
    assert not is_due(schedule, last, utc("2027-03-02 01:59:59"))
    assert is_due(schedule, last, utc("2027-03-02 02:00"))
    assert is_due(schedule, last, utc("2027-03-02 02:04"))
    # The run at 02:04 is the last run now: the next tick is not due again.
    assert not is_due(schedule, utc("2027-03-02 02:04"), utc("2027-03-02 02:09"))


def test_a_cron_that_never_ran_looks_back_one_tick_and_a_minute() -> None:
    schedule = "cron(0 2 * * ? *)"
    assert is_due(schedule, None, utc("2027-03-01 02:00"))
    assert is_due(schedule, None, utc("2027-03-01 02:05:59"))
    assert FIRST_RUN_WINDOW_SECONDS == 6 * MINUTE
    assert not is_due(schedule, None, utc("2027-03-01 02:06:01"))
    assert not is_due(schedule, None, utc("2027-03-01 01:59"))


def test_the_minute_of_the_last_run_itself_does_not_run_again() -> None:
    """(last, now] excludes the last run: a run started at 02:00:00 exactly covers 02:00."""
    assert not is_due("cron(0 2 * * ? *)", utc("2027-03-01 02:00"), utc("2027-03-01 02:05"))


def test_a_cron_stopped_for_weeks_catches_up_once_within_the_lookback() -> None:
    schedule = "cron(0 2 * * ? *)"
    now = utc("2027-03-30 12:00")
    assert is_due(schedule, utc("2027-03-01 03:00"), now)
    # Monthly on the 1st at 02:00, last run a month ago: the 1st is beyond the eight days looked at.
    assert MAX_LOOKBACK_SECONDS == 8 * DAY
    assert not is_due("cron(0 2 1 * ? *)", utc("2027-03-01 02:01"), now)
    assert is_due("cron(0 2 1 * ? *)", utc("2027-03-01 02:01"), utc("2027-04-01 02:03"))


def test_weekdays_count_from_sunday_as_one_like_eventbridge() -> None:
    # 2027-03-01 is a Monday.
    assert time_weekday("2027-03-01") == "Mon"
    monday_9 = utc("2027-03-01 09:00")
    sunday_9 = utc("2027-03-07 09:00")
    for schedule in ("cron(0 9 ? * MON-FRI *)", "cron(0 9 ? * 2-6 *)", "cron(0 9 ? * mon,tue,wed,thu,fri *)"):
        assert is_due(schedule, monday_9 - HOUR, monday_9), schedule
        assert not is_due(schedule, sunday_9 - HOUR, sunday_9), schedule
    assert is_due("cron(0 9 ? * 1 *)", sunday_9 - HOUR, sunday_9)
    assert is_due("cron(0 9 ? * SUN *)", sunday_9 - HOUR, sunday_9)
    assert is_due("cron(0 9 ? * 7 *)", sunday_9 - DAY - HOUR, sunday_9 - DAY)  # Saturday


def time_weekday(date: str) -> str:
    return time.strftime("%a", time.gmtime(utc(date)))


def test_steps_lists_ranges_months_and_years() -> None:
    parsed = parse("cron(0/15 8-10,22 1,15 JAN-MAR,JUL ? 2027-2029/2)")
    assert isinstance(parsed, Cron)
    assert parsed.minutes == {0, 15, 30, 45}
    assert parsed.hours == {8, 9, 10, 22}
    assert parsed.days_of_month == {1, 15}
    assert parsed.months == {1, 2, 3, 7}
    assert parsed.days_of_week is None
    assert parsed.years == {2027, 2029}
    assert parse("cron(*/20 * * * ? *)") == parse("cron(0,20,40 * * * ? *)")
    assert parse("cron(5/20 * * * ? *)").minutes == {5, 25, 45}  # type: ignore[union-attr]
    schedule = "cron(30 22 15 JUL ? 2027)"
    assert is_due(schedule, utc("2027-07-15 22:00"), utc("2027-07-15 22:31"))
    assert not is_due(schedule, utc("2028-07-15 22:00"), utc("2028-07-15 22:31"))  # another year
    assert not is_due(schedule, utc("2027-06-15 22:00"), utc("2027-06-15 22:31"))  # another month


def test_every_five_minutes_cron_is_due_at_each_tick() -> None:
    schedule = "cron(0/5 * * * ? *)"
    last = utc("2027-03-01 10:00:10")
    assert not is_due(schedule, last, last + 4 * MINUTE)
    assert is_due(schedule, last, last + 5 * MINUTE)


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("hourly", "is not a schedule"),
        ("rate(1 week)", "is not a schedule"),
        ("rate(90 seconds)", "is not a schedule"),
        ("rate(2 minutes)", "imports are checked every 5 minutes"),
        ("rate(1 hours)", "singular unit"),
        ("rate(3 day)", "singular unit"),
        ("cron(0 2 * * ?)", "six fields"),
        ("cron(0 2 * * ? * *)", "six fields"),
        ("cron(0 2 * * * *)", "either the day of month or the day of week"),
        ("cron(0 2 ? * ? *)", "either the day of month or the day of week"),
        ("cron(? 2 * * ? *)", "'\\?' is only for the day of month or the day of week"),
        ("cron(0 24 * * ? *)", "the hours must be from 0 to 23"),
        ("cron(0 2 0 * ? *)", "the day of month must be from 1 to 31"),
        ("cron(0 2 ? * 8 *)", "the day of week must be from 1 to 7"),
        ("cron(0 2 * 13 ? *)", "the month must be from 1 to 12"),
        ("cron(0 2 * * ? 1969)", "the year must be from 1970 to 2199"),
        ("cron(0 2 L * ? *)", "L, W and #"),
        ("cron(0 2 15W * ? *)", "L, W and #"),
        ("cron(0 2 ? * 6L *)", "L, W and #"),
        ("cron(0 2 ? * FRI#2 *)", "L, W and #"),
        ("cron(0 2 * FOO ? *)", "'FOO' is not a value of the month"),
        ("cron(0 2 ? * MON-FRX *)", "'FRX' is not a value of the day of week"),
        ("cron(0 2 * JAN ? MON)", "'MON' is not a value of the year"),
        ("cron(0/0 2 * * ? *)", "needs a step from 1 to 59"),
        ("cron(0/x 2 * * ? *)", "needs a step from 1 to 59"),
        ("cron(30-10 2 * * ? *)", "must go from low to high"),
        ("cron(1,,2 2 * * ? *)", "'' is not a value of the minutes"),
    ],
)
def test_bad_expressions_are_refused_with_the_reason(expression: str, reason: str) -> None:
    with pytest.raises(BadRequest, match=reason):
        parse(expression)
    with pytest.raises(BadRequest, match=reason):
        is_due(expression, None, utc("2027-03-01 10:00"))


def test_month_and_day_names_holding_l_and_w_are_not_taken_for_the_l_and_w_marks() -> None:
    parsed = parse("cron(0 2 ? JUL,jun WED,SAT *)")
    assert isinstance(parsed, Cron)
    assert (parsed.months, parsed.days_of_week) == ({6, 7}, {4, 7})
