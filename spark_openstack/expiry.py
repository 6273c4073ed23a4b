"""Cluster expiry: a deadline kept in the cloud, and ``reap`` that destroys what is past it.

Why: a class cluster forgotten after the class goes on costing money (amplab's training
docs warn of "hundreds or thousands of dollars"). ``launch --expires-in 8h`` stamps the
deadline into every server's metadata (the cloud is the only state, so any machine with
the project's credentials sees it, and workers added later inherit it); ``list`` and
``describe`` show it, and ``spark-openstack reap`` (safe from cron) destroys every cluster
of the project whose deadline has passed. A cluster without a deadline is never reaped.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Iterable

from .errors import UsageError

#: Server metadata key holding the deadline, ISO 8601 UTC (``2026-11-25T07:10:00Z``).
META_EXPIRES = "spark_openstack_expires"
#: Shortest and longest --expires-in (a typo like "8" must not mean 8 seconds).
MIN_SECONDS = 5 * 60
MAX_SECONDS = 366 * 24 * 3600

_PART = re.compile(r"(\d+)([dhm])")
_UNITS = {"d": 86400, "h": 3600, "m": 60}
_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def parse_duration(text: str, *, option: str = "--expires-in") -> int:
    """``8h``, ``90m``, ``2d``, ``1h30m`` -> seconds; anything else names the option."""
    raw = (text or "").strip().lower().replace(" ", "")
    parts = _PART.findall(raw)
    if not raw or "".join(n + u for n, u in parts) != raw:
        raise UsageError(f"{option} {text!r} is not a duration",
                         hint=f"use days, hours and minutes, e.g. {option} 8h, 90m, 2d or 1h30m")
    seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise UsageError(f"{option} {text}: must be between 5 minutes and 366 days",
                         hint=f"e.g. {option} 8h for a day's class")
    return seconds


def deadline_after(seconds: int, *, now: datetime | None = None) -> str:
    """The metadata value for a deadline ``seconds`` from ``now`` (whole seconds, UTC)."""
    now = now or datetime.now(timezone.utc)
    return (now + timedelta(seconds=seconds)).strftime(_FORMAT)


def parse_deadline(value: str | None) -> datetime | None:
    """A metadata value back to an aware datetime; None when absent or unreadable."""
    if not value:
        return None
    try:
        return datetime.strptime(value.strip(), _FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def cluster_deadline(servers: Iterable) -> datetime | None:
    """The earliest deadline any of the cluster's servers carries (None: never expires)."""
    found = [parse_deadline((s.metadata or {}).get(META_EXPIRES)) for s in servers]
    found = [d for d in found if d is not None]
    return min(found) if found else None


def _span(seconds: float) -> str:
    seconds = int(abs(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m"


def expiry_dict(deadline: datetime | None, *, now: datetime | None = None) -> dict:
    """What ``list``/``describe``/``batch status`` show: the deadline, whether it has
    passed, the seconds left (negative once past) and a short text."""
    if deadline is None:
        return {"expires_at": None, "expired": False, "remaining_s": None, "text": "never"}
    now = now or datetime.now(timezone.utc)
    left = (deadline - now).total_seconds()
    text = (f"{deadline.strftime('%Y-%m-%d %H:%M')} UTC (in {_span(left)})" if left > 0
            else f"EXPIRED {_span(left)} ago")
    return {"expires_at": deadline.strftime(_FORMAT), "expired": left <= 0,
            "remaining_s": int(left), "text": text}
