"""When a directory's scheduled import is due: its EventBridge ``rate(...)`` or ``cron(...)``.

One EventBridge rule calls the provisioning function every ``TICK_SECONDS``; each tick runs
the directories whose own schedule is due (``is_due``). The directories table stays the one
source of truth: no rule per directory is created, changed or left behind at run time.

Cron expressions follow EventBridge (six fields: minutes, hours, day of month, month, day
of week, year; UTC): numbers, ``*``, ``?``, lists, ranges and steps, months JAN-DEC, days
of the week 1-7 or SUN-SAT (1 is Sunday), and exactly one of day of month and day of week
is ``?``. ``L``, ``W`` and ``#`` are refused: a run "on the last Friday" is not supported.
Everything here is pure: the caller passes the time of the last run and ``now``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from idp_core.errors import BadRequest

# How often the EventBridge rule calls the provisioning function (infra uses it too).
TICK_SECONDS = 5 * 60
# A rate schedule runs when its period has passed, less this: the ticks are not exactly
# TICK_SECONDS apart, and without it a run due a second after a tick would wait one more
# tick every time (rate(5 minutes) would run every 10 minutes). It is less than a tick, so
# no period gets two runs.
RATE_GRACE_SECONDS = 60
# A cron schedule that never ran looks back this far for a matching minute: one tick and a
# minute of jitter between ticks, so the first matching minute after it is set is not missed.
FIRST_RUN_WINDOW_SECONDS = TICK_SECONDS + 60
# How far back a cron schedule looks for a matching minute since its last run (a run
# stopped for longer than this catches up once, not once per missed minute).
MAX_LOOKBACK_SECONDS = 8 * 24 * 3600
MIN_RATE_SECONDS = TICK_SECONDS

_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"rate\((?P<value>[1-9][0-9]{0,5}) (?P<unit>minutes?|hours?|days?)\)")
_CRON = re.compile(r"cron\((?P<fields>[^()]*)\)")
# Spelled out: the calendar module's month names follow the process's locale, EventBridge's do not.
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
_DAYS = {name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), 1)}
_VALUE = re.compile(r"[0-9]{1,4}|[A-Za-z]{3}")
_HELP = (
    "use rate(N minutes|hours|days), e.g. rate(1 hour), "
    "or an EventBridge cron with six fields, e.g. cron(0 2 * * ? *)."
)


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None
    question_mark: bool = False


_FIELDS = (
    _Field("minutes", 0, 59),
    _Field("hours", 0, 23),
    _Field("day of month", 1, 31, question_mark=True),
    _Field("month", 1, 12, names=_MONTHS),
    _Field("day of week", 1, 7, names=_DAYS, question_mark=True),
    _Field("year", 1970, 2199),
)


@dataclass(frozen=True)
class Rate:
    seconds: int


@dataclass(frozen=True)
class Cron:
    """The matching values of each field; None for a day field that is ``?``."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None
    months: frozenset[int]
    days_of_week: frozenset[int] | None
    years: frozenset[int]

    def matches(self, epoch_minute: int) -> bool:
        """Whether the minute starting at ``epoch_minute * 60`` (UTC) is one of the schedule's."""
        moment = time.gmtime(epoch_minute * 60)
        if moment.tm_min not in self.minutes or moment.tm_hour not in self.hours:
            return False
        if moment.tm_mon not in self.months or moment.tm_year not in self.years:
            return False
        if self.days_of_month is not None:
            return moment.tm_mday in self.days_of_month
        # tm_wday counts from Monday = 0; EventBridge from Sunday = 1.
        return self.days_of_week is not None and (moment.tm_wday + 1) % 7 + 1 in self.days_of_week


Schedule = Rate | Cron


def parse(expression: str) -> Schedule:
    """The schedule ``expression`` means, or ``BadRequest`` with the reason."""
    text = str(expression).strip()
    rate = _RATE.fullmatch(text)
    if rate:
        return _rate(text, int(rate["value"]), rate["unit"])
    cron = _CRON.fullmatch(text)
    if not cron:
        raise BadRequest(f"{text!r} is not a schedule: {_HELP}")
    parts = cron["fields"].split()
    if len(parts) != len(_FIELDS):
        raise BadRequest(f"{text!r} is not a schedule: a cron has six fields; {_HELP}")
    minutes, hours, days_of_month, months, days_of_week, years = parts
    day_fields = (_day_field(days_of_month, _FIELDS[2], text), _day_field(days_of_week, _FIELDS[4], text))
    if (day_fields[0] is None) == (day_fields[1] is None):
        raise BadRequest(
            f"{text!r}: give either the day of month or the day of week and '?' in the other, "
            "e.g. cron(0 2 * * ? *) or cron(0 2 ? * MON-FRI *)."
        )
    return Cron(
        minutes=_field(minutes, _FIELDS[0], text),
        hours=_field(hours, _FIELDS[1], text),
        days_of_month=day_fields[0],
        months=_field(months, _FIELDS[3], text),
        days_of_week=day_fields[1],
        years=_field(years, _FIELDS[5], text),
    )


def is_due(expression: str, last_run: float | None, now: float) -> bool:
    """Whether a run is due at ``now`` for a schedule whose last run started at ``last_run``
    (None: it never ran). A rate is due once its period has passed (less the grace); a cron
    when one of its minutes is in (last run, now]."""
    schedule = parse(expression)
    if isinstance(schedule, Rate):
        return last_run is None or last_run + schedule.seconds - RATE_GRACE_SECONDS <= now
    start = now - FIRST_RUN_WINDOW_SECONDS if last_run is None else max(last_run, now - MAX_LOOKBACK_SECONDS)
    # The minutes m with start < m * 60 <= now, newest first: a due schedule usually matches
    # the last few minutes.
    first, last = int(start // 60) + 1, int(now // 60)
    return any(schedule.matches(minute) for minute in range(last, first - 1, -1))


def _rate(text: str, value: int, unit: str) -> Rate:
    # EventBridge wants the singular unit for 1 and the plural otherwise.
    if (value == 1) == unit.endswith("s"):
        raise BadRequest(
            f"{text!r}: write rate(1 hour) with a singular unit and rate(2 hours) with a plural."
        )
    seconds = value * _UNIT_SECONDS[unit.rstrip("s")]
    if seconds < MIN_RATE_SECONDS:
        raise BadRequest(
            f"{text!r} is too frequent: imports are checked every {MIN_RATE_SECONDS // 60} minutes, "
            f"so a rate is at least rate({MIN_RATE_SECONDS // 60} minutes)."
        )
    return Rate(seconds)


def _day_field(part: str, spec: _Field, text: str) -> frozenset[int] | None:
    """A day field: None for '?' (the other day field decides)."""
    return None if part == "?" else _field(part, spec, text)


def _field(part: str, spec: _Field, text: str) -> frozenset[int]:
    if part == "?":
        raise BadRequest(f"{text!r}: '?' is only for the day of month or the day of week.")
    # Month and day names hold L and W (JUL, WED); what is left after them must not.
    unnamed = re.sub("|".join(spec.names or {}) or "$^", "", part.upper())
    if any(mark in unnamed for mark in ("L", "W", "#")):
        raise BadRequest(
            f"{text!r}: L, W and # (last day, nearest weekday, n-th weekday) are not supported "
            f"in the {spec.name}; list the days instead."
        )
    values: set[int] = set()
    for item in part.split(","):
        values |= _item(item, spec, text)
    return frozenset(values)


def _item(item: str, spec: _Field, text: str) -> set[int]:
    body, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or not 1 <= int(step_text) <= spec.high:
            raise BadRequest(f"{text!r}: {item!r} in the {spec.name} needs a step from 1 to {spec.high}.")
        step = int(step_text)
    if body == "*":
        low, high = spec.low, spec.high
    else:
        first, dash, second = body.partition("-")
        low = _value(first, spec, text)
        # "5/15" starts at 5 and runs to the end of the field; "5" alone is just 5.
        high = _value(second, spec, text) if dash else (spec.high if slash else low)
        if low > high:
            raise BadRequest(f"{text!r}: the range {body!r} in the {spec.name} must go from low to high.")
    return set(range(low, high + 1, step))


def _value(raw: str, spec: _Field, text: str) -> int:
    if not _VALUE.fullmatch(raw):
        raise BadRequest(f"{text!r}: {raw!r} is not a value of the {spec.name}.")
    if raw.isdigit():
        number = int(raw)
    elif spec.names and raw.upper() in spec.names:
        number = spec.names[raw.upper()]
    else:
        raise BadRequest(f"{text!r}: {raw!r} is not a value of the {spec.name}.")
    if not spec.low <= number <= spec.high:
        raise BadRequest(f"{text!r}: the {spec.name} must be from {spec.low} to {spec.high}; {raw!r} is not.")
    return number
