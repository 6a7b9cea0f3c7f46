"""Store UTC, think in Asia/Shanghai: the one place that converts."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utcnow() -> dt.datetime:
    """The current instant, timezone-aware UTC. Boundaries call it and pass the result down."""
    return dt.datetime.now(dt.UTC)


def local_date(instant: dt.datetime) -> dt.date:
    """The Asia/Shanghai business date of an instant."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(SHANGHAI).date()


def local_datetime(instant: dt.datetime) -> dt.datetime:
    """An instant shown in Asia/Shanghai (naive datetimes from SQLite are UTC)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.UTC)
    return instant.astimezone(SHANGHAI)
