"""The request log: every request on every origin, recorded before it is handled."""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Literal

Origin = Literal["hub", "cdn", "cas"]


@dataclass(frozen=True)
class RequestRecord:
    origin: Origin
    method: str
    path: str  # raw, undecoded
    query: str  # raw query string without "?"
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    status: int  # 0 until the response status is known
    time: float = 0.0  # time.time() when the request arrived
    body: bytes = b""  # small request bodies (POST forms)


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[int, RequestRecord] = {}  # insertion-ordered by arrival
        self._next_id = 0

    def start(self, record: RequestRecord) -> int:
        """Record an arriving request; returns its id for ``finish``."""
        with self._lock:
            self._next_id += 1
            self._items[self._next_id] = record
            return self._next_id

    def finish(self, record_id: int, status: int) -> None:
        with self._lock:
            record = self._items.get(record_id)
            if record is not None:
                self._items[record_id] = replace(record, status=status)

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return [replace(r, headers=dict(r.headers)) for r in self._items.values()]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def write(self, path: Path) -> None:
        with path.open("w", encoding="utf-8") as fh:
            for record in self.snapshot():
                row = asdict(record)
                row["body"] = record.body.decode("utf-8", errors="replace")
                fh.write(json.dumps(row, sort_keys=True) + "\n")
