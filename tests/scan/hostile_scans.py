"""Scan functions that misbehave the way a parser on hostile input can: they stand in for the
engine inside an isolated worker (`IsolatedScanner(target=...)`)."""

from __future__ import annotations

import ctypes
import time
from pathlib import Path

from proxy.scan.report import Format, ScanReport


def eat_memory(path: Path, name: str, time_limit_s: float) -> ScanReport:
    hoard = []
    while True:  # a memo or a decompressor that never stops growing
        hoard.append(bytearray(64 * 1024**2))


def segfault(path: Path, name: str, time_limit_s: float) -> ScanReport:
    ctypes.string_at(0)  # a C library reading a wild pointer
    raise AssertionError("unreachable")


def hang(path: Path, name: str, time_limit_s: float) -> ScanReport:
    time.sleep(3600)  # a C loop that never checks the engine's deadline
    raise AssertionError("unreachable")


def explode(path: Path, name: str, time_limit_s: float) -> ScanReport:
    raise ValueError("parser exploded")


def clean_unless_named_bad(path: Path, name: str, time_limit_s: float) -> ScanReport:
    if name == "bad":
        raise ValueError("bad")
    return ScanReport(Format.UNKNOWN, "test", (), 1.0)
