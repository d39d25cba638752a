"""When a review request goes out: after the agency's delay, inside its business hours, and
never later than 72 hours after the trigger email.

Business hours are wall-clock times in the agency's time zone, so the window moves with daylight
saving; the 72-hour promise is absolute time and does not. A day that ends at 23:59 runs to
midnight: a time field cannot say 24:00, and an agency that collects around the clock (the demo
agency does) must not find its requests held for the last minute of every day.
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

PROMISE = timedelta(hours=72)
# The latest end a time input offers; a window ending here closes at the next midnight.
LAST_MINUTE = time(23, 59)
# The worker needs a moment to claim and send; aim this far inside the promise.
SAFETY_MARGIN = timedelta(minutes=30)


def local_window(day: date, start, end, tz: ZoneInfo) -> tuple[datetime, datetime]:
    opens = datetime.combine(day, start, tzinfo=tz)
    if end >= LAST_MINUTE:
        return opens, datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return opens, datetime.combine(day, end, tzinfo=tz)


def next_business_moment(moment: datetime, days: list[int], start, end, tz: ZoneInfo) -> datetime:
    """`moment` if it falls inside business hours, else the start of the next window."""
    local = moment.astimezone(tz)
    for offset in range(8):
        day = local.date() + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        opens, closes = local_window(day, start, end, tz)
        if moment < opens:
            return opens
        if moment < closes:
            return moment
    return moment  # unreachable with at least one business day; kept total for safety


def send_time(
    trigger_at: datetime, *, delay_hours: int, business_days: list[int], start, end, time_zone: str
) -> datetime:
    """The moment a request for a trigger received at `trigger_at` should be sent."""
    deadline = trigger_at + PROMISE
    target = trigger_at + timedelta(hours=delay_hours)
    if business_days:
        target = next_business_moment(target, business_days, start, end, ZoneInfo(time_zone))
    latest = max(trigger_at, deadline - SAFETY_MARGIN)
    return min(target, latest)


def send_time_for(settings, trigger_at: datetime) -> datetime:
    return send_time(
        trigger_at,
        delay_hours=settings.delay_hours,
        business_days=settings.business_day_numbers(),
        start=settings.business_start,
        end=settings.business_end,
        time_zone=settings.agency.time_zone,
    )
