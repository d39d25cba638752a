"""When a request goes out: delay, business hours, the 72-hour cap — with `now` passed in."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emailsync.review_requests.scheduling import PROMISE, SAFETY_MARGIN, send_time

WEEKDAYS = [0, 1, 2, 3, 4]
NINE, FIVE = time(9), time(17)


def at(text: str, tz: str = "Europe/London") -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


def when(trigger, delay, days=WEEKDAYS, start=NINE, end=FIVE, tz="Europe/London"):
    return send_time(
        trigger, delay_hours=delay, business_days=days, start=start, end=end, time_zone=tz
    )


def test_delay_inside_business_hours_is_kept():
    trigger = at("2026-03-10T10:00")  # Tuesday
    assert when(trigger, 24) == at("2026-03-11T10:00")
    assert when(trigger, 0) == trigger
    assert when(trigger, 3) == at("2026-03-10T13:00")


def test_after_hours_moves_to_next_opening():
    trigger = at("2026-03-10T16:00")  # Tuesday; +3 h is 19:00
    assert when(trigger, 3) == at("2026-03-11T09:00")


def test_weekend_moves_to_monday():
    trigger = at("2026-03-13T15:00")  # Friday; +24 h is Saturday
    assert when(trigger, 24) == at("2026-03-16T09:00")


def test_business_hours_follow_the_agency_time_zone():
    trigger = datetime(2026, 3, 10, 23, 0, tzinfo=UTC)  # Wed 10:00 in Sydney
    sent = when(trigger, 0, tz="Australia/Sydney")
    assert sent == trigger  # already inside Sydney's business day
    sent = when(trigger, 0, tz="America/New_York")  # 19:00 Tuesday in New York
    assert sent == at("2026-03-11T09:00", "America/New_York")


def test_the_72_hour_cap_wins_over_the_window():
    trigger = at("2026-03-13T16:30")  # Friday afternoon, 72 h delay → Monday 16:30 is fine
    assert when(trigger, 72) == trigger + PROMISE - SAFETY_MARGIN
    # Only Sundays allowed: the next window is too far, so it goes at the last safe moment.
    trigger = at("2026-03-09T18:00")  # Monday evening
    assert when(trigger, 48, days=[6]) == trigger + PROMISE - SAFETY_MARGIN


def test_no_business_days_means_send_after_the_delay():
    trigger = at("2026-03-14T03:00")
    assert when(trigger, 5, days=[]) == trigger + timedelta(hours=5)


def test_dst_spring_forward_gap_opening():
    # Europe/London jumps 01:00 → 02:00 on 2026-03-29; a window opening at 01:30 does not exist.
    trigger = at("2026-03-28T20:00")
    sent = when(trigger, 2, days=[6], start=time(1, 30), end=time(3, 0))
    assert trigger <= sent <= trigger + PROMISE
    assert sent.astimezone(ZoneInfo("Europe/London")).hour in (1, 2)


TIME_ZONES = [
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "America/St_Johns",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "Pacific/Apia",
    "Africa/Casablanca",
    "Asia/Tehran",
    "Pacific/Kiritimati",
]
# Around DST changes of several zones, and anywhere in a few years.
DST_MOMENTS = [
    datetime(2026, 3, 8, 6, 0, tzinfo=UTC),
    datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
    datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
    datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
    datetime(2026, 4, 5, 15, 30, tzinfo=UTC),
    datetime(2026, 10, 3, 15, 30, tzinfo=UTC),
]


@st.composite
def trigger_times(draw):
    if draw(st.booleans()):
        base = draw(st.sampled_from(DST_MOMENTS))
        return base + timedelta(minutes=draw(st.integers(-4 * 24 * 60, 4 * 24 * 60)))
    return draw(
        st.datetimes(
            min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
        )
    )


@st.composite
def windows(draw):
    start = draw(st.times())
    end = draw(st.times())
    if start >= end:
        start, end = min(start, end), max(start, end)
    if start == end:
        start, end = time(9), time(17)
    return start, end


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    trigger=trigger_times(),
    delay=st.integers(0, 72),
    days=st.lists(st.integers(0, 6), unique=True, max_size=7),
    window=windows(),
    tz=st.sampled_from(TIME_ZONES),
)
def test_property_never_before_the_trigger_never_after_72_hours(trigger, delay, days, window, tz):
    start, end = window
    sent = when(trigger, delay, days=days, start=start, end=end, tz=tz)
    assert sent.tzinfo is not None
    assert trigger <= sent <= trigger + PROMISE
    # Never earlier than the delay asks, unless the delay itself would break the promise.
    assert sent >= min(trigger + timedelta(hours=delay), trigger + PROMISE - SAFETY_MARGIN)


@pytest.mark.parametrize("tz", ["America/New_York", "Europe/London", "Australia/Sydney"])
def test_dst_fall_back_hour_keeps_the_promise(tz):
    for hours in range(0, 24 * 5):
        trigger = datetime(2026, 10, 22, tzinfo=UTC) + timedelta(hours=hours)
        sent = when(trigger, 24, tz=tz, start=time(1, 15), end=time(1, 45))
        assert trigger <= sent <= trigger + PROMISE


def test_a_day_ending_at_23_59_runs_to_midnight():
    # The demo agency collects around the clock (00:00–23:59, every day): an email in the
    # day's last minute goes at once, not at the next midnight.
    every_day = list(range(7))
    trigger = at("2026-11-28T23:59:30")
    assert when(trigger, 0, days=every_day, start=time(0), end=time(23, 59)) == trigger
    # On weekdays only, Friday's last minute still counts; Saturday's does not.
    assert when(at("2026-11-27T23:59:30"), 0, end=time(23, 59)) == at("2026-11-27T23:59:30")
    assert when(at("2026-11-28T23:59:30"), 0, end=time(23, 59)) == at("2026-11-30T09:00")
    # Any earlier end is where the day ends.
    assert when(at("2026-11-27T23:58:30"), 0, end=time(23, 58)) == at("2026-11-30T09:00")
