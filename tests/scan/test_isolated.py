"""Scans in worker processes: a scan that runs out of memory or time, crashes its worker or
raises blocks the file, and the next file gets a fresh worker."""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.policy import Verdict, decide
from proxy.scan.engine import scan_path
from proxy.scan.isolated import IsolatedScanner

HOSTILE = "tests.scan.hostile_scans"


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=4))
    return path


def _scanner(target: str, **overrides: float) -> IsolatedScanner:
    values: dict[str, float] = {"memory_bytes": 512 * 1024**2, "time_limit_s": 30.0}
    values.update(overrides)
    return IsolatedScanner(
        workers=1,
        memory_bytes=int(values["memory_bytes"]),
        time_limit_s=values["time_limit_s"],
        target=target,
    )


@pytest.fixture
def closing() -> Iterator[list[IsolatedScanner]]:
    scanners: list[IsolatedScanner] = []
    yield scanners
    for scanner in scanners:
        scanner.close()


def test_the_engine_in_a_worker_reports_what_it_reports_in_process(
    sample: Path, tmp_path: Path, closing: list[IsolatedScanner]
) -> None:
    marker = tmp_path / "MARKER"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(b"cposix\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    scanner = IsolatedScanner(workers=1, memory_bytes=1024**3, time_limit_s=60.0)
    closing.append(scanner)
    for path in (sample, evil):
        isolated = scanner.scan(path, path.stat().st_size, path.name)
        local = scan_path(path, name=path.name)
        assert (isolated.format, isolated.findings) == (local.format, local.findings)
    assert decide(scanner.scan(evil, 0, "evil.pkl")).verdict is Verdict.BLOCK
    assert decide(scanner.scan(sample, 0, "weights.pkl")).verdict is Verdict.ALLOW
    assert not marker.exists()


@pytest.mark.parametrize(
    "target, rule",
    [
        ("eat_memory", "scan-memory-limit"),
        ("segfault", "scanner-crashed"),
        ("explode", "scanner-error"),
    ],
)
def test_a_failing_scan_blocks_the_file(
    sample: Path, closing: list[IsolatedScanner], target: str, rule: str
) -> None:
    scanner = _scanner(f"{HOSTILE}:{target}")
    closing.append(scanner)
    report = scanner.scan(sample, sample.stat().st_size, sample.name)
    assert [f.rule for f in report.findings] == [rule]
    assert decide(report).verdict is Verdict.BLOCK


def test_a_hung_scan_is_killed_at_the_time_limit(
    sample: Path, closing: list[IsolatedScanner], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("proxy.scan.isolated.GRACE_S", 0.5)
    scanner = _scanner(f"{HOSTILE}:hang", time_limit_s=1.0)
    closing.append(scanner)
    started = time.monotonic()
    report = scanner.scan(sample, sample.stat().st_size, sample.name)
    assert time.monotonic() - started < 10
    assert [f.rule for f in report.findings] == ["scan-time-limit"]
    assert decide(report).verdict is Verdict.BLOCK


def test_a_failed_worker_is_replaced_for_the_next_file(
    sample: Path, closing: list[IsolatedScanner]
) -> None:
    scanner = _scanner(f"{HOSTILE}:clean_unless_named_bad")
    closing.append(scanner)
    first = scanner.scan(sample, 0, "good")
    assert first.findings == ()
    assert [f.rule for f in scanner.scan(sample, 0, "bad").findings] == ["scanner-error"]
    assert scanner.scan(sample, 0, "good").findings == ()


def test_a_closed_scanner_leaves_no_worker_behind(sample: Path) -> None:
    scanner = _scanner(f"{HOSTILE}:clean_unless_named_bad")
    scanner.scan(sample, 0, "good")
    workers = list(scanner._all)
    assert workers and all(w.process.is_alive() for w in workers)
    scanner.close()
    assert not any(w.process.is_alive() for w in workers)


STOP_CHECK = """
import sys, time
from pathlib import Path
from proxy.scan.isolated import IsolatedScanner
scanner = IsolatedScanner(
    workers=1, memory_bytes=1024**3, time_limit_s=60.0, start_method=sys.argv[2]
)
assert scanner.scan(Path(sys.argv[1]), 0, "weights.pkl").findings == ()
workers = list(scanner._all)
scanner.close()
print([w.process.exitcode for w in workers])
"""


@pytest.mark.parametrize("start_method", ["forkserver", "fork"])
def test_workers_exit_on_close_whichever_way_they_started(sample: Path, start_method: str) -> None:
    """A forked worker holds a copy of the parent's end of its pipe and never sees EOF: it is
    told to stop, and exits cleanly rather than being killed. Run in a fresh single-threaded
    process, as `airlock scan` is (forking this multi-threaded test process is unsafe)."""
    result = subprocess.run(
        [sys.executable, "-c", STOP_CHECK, str(sample), start_method],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[0]"
