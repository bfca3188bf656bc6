"""Points in time as people type them: for `airlock audit --since` and the audit page."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, *, now: float | None = None) -> float:
    """A point in time: a Unix timestamp, an ISO date or date-time (UTC unless it says), or an
    age such as 30m, 24h, 7d."""
    text = text.strip()
    current = time.time() if now is None else now
    relative = _RELATIVE.match(text)
    if relative:
        return current - float(relative.group(1)) * _UNITS[relative.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a time: use 24h, 7d, 2026-11-27, 2026-11-27T08:00 or a timestamp"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
