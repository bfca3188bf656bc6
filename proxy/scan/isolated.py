"""Scans in worker processes, each scan under a memory limit and a hard time limit.

The engine reads hostile bytes, and some formats go through C code (HDF5 via h5py, 7z
codecs). A worker process keeps whatever goes wrong there away from the mirror:

- memory: the worker's address space is capped (RLIMIT_AS); a scan that needs more gets a
  MemoryError or dies, and the file is blocked;
- time: the engine stops itself between members at its time limit, and the parent kills a
  worker that has not answered shortly after;
- crashes: a worker that dies (a signal, an abort in a C library) blocks the file.

Requests and reports cross the pipe as JSON, never as pickles: a worker that a hostile file
managed to subvert must not be able to run code in the mirror by what it sends back.
Workers are reused across scans and replaced after any failure.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import multiprocessing
import multiprocessing.connection
import queue
import resource
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from proxy.scan import SCANNER_VERSION
from proxy.scan.report import Finding, Format, ScanReport, Severity

SCANNER_NAME = "airlock-engine"
ScanFunction = Callable[[Path, str, float], ScanReport]
DEFAULT_TARGET = "proxy.scan.isolated:engine_scan"
# How long past its own time limit a worker may take to answer before it is killed.
GRACE_S = 5.0
STOP = b"stop"
# The mirror is multi-threaded, so its workers come from a fork server (forking a threaded
# process is unsafe). `airlock scan` is single-threaded and forks its worker directly, which
# saves starting two interpreters per run.
multiprocessing.get_context("forkserver").set_forkserver_preload(
    ["proxy.scan.isolated", "proxy.scan.engine"]
)
StartMethod = Literal["forkserver", "fork"]


def engine_scan(path: Path, name: str, time_limit_s: float) -> ScanReport:
    from proxy.scan.engine import Limits, scan_path

    return scan_path(path, name=name, limits=Limits(time_limit_s=time_limit_s))


class IsolatedScanner:
    """The mirror's and the CLI's scanner: `proxy.scan.engine` in worker processes."""

    name = SCANNER_NAME
    version = SCANNER_VERSION

    def __init__(
        self,
        *,
        workers: int,
        memory_bytes: int,
        time_limit_s: float,
        target: str = DEFAULT_TARGET,
        start_method: StartMethod = "forkserver",
    ) -> None:
        self.context = multiprocessing.get_context(start_method)
        self.memory_bytes = memory_bytes
        self.time_limit_s = time_limit_s
        self.target = target
        self._slots = threading.BoundedSemaphore(workers)
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._all: set[_Worker] = set()
        self._closed = False

    def scan(self, path: Path, size_bytes: int, name: str) -> ScanReport:
        with self._slots:
            worker = self._take()
            started = time.perf_counter()
            try:
                report = worker.run(path, name, self.time_limit_s)
            except _WorkerFailed as failed:
                self._retire(worker)
                return _failure(failed, round((time.perf_counter() - started) * 1000, 3))
            self._idle.put(worker)
            return report

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._all = list(self._all), set()
        for worker in workers:
            worker.stop()

    def _take(self) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._closed:
                raise RuntimeError("the scanner is closed")
            worker = _Worker(self.context, self.memory_bytes, self.target)
            self._all.add(worker)
            return worker

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._all.discard(worker)


class _WorkerFailed(Exception):
    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


class _Worker:
    def __init__(self, context: Any, memory_bytes: int, target: str) -> None:
        self.memory_bytes = memory_bytes
        parent, child = context.Pipe()
        self.conn = parent
        self.process = context.Process(
            target=_serve, args=(child, memory_bytes, target), daemon=True, name="airlock-scan"
        )
        self.process.start()
        child.close()

    def run(self, path: Path, name: str, time_limit_s: float) -> ScanReport:
        request = {"path": str(path), "name": name, "time_limit_s": time_limit_s}
        try:
            self.conn.send_bytes(json.dumps(request).encode())
            if not self.conn.poll(time_limit_s + GRACE_S):
                raise _WorkerFailed(
                    "scan-time-limit",
                    f"the scan did not finish within {time_limit_s:g} s; the file was not cleared",
                )
            reply = json.loads(self.conn.recv_bytes())
        except (EOFError, OSError, ValueError):
            raise _WorkerFailed("scanner-crashed", self._death()) from None
        if "report" in reply:
            try:
                return ScanReport.from_json(reply["report"])
            except (KeyError, TypeError, ValueError) as exc:
                raise _WorkerFailed(
                    "scanner-error", f"the scan worker answered badly: {exc}"
                ) from None
        if reply.get("error") == "memory":
            raise _WorkerFailed(
                "scan-memory-limit",
                f"the scan needed more than {self.memory_bytes} bytes of memory; "
                "the file was not cleared",
            )
        raise _WorkerFailed(
            "scanner-error", f"the scanner failed on this file ({reply.get('error', 'unknown')})"
        )

    def _death(self) -> str:
        self.process.join(1.0)
        code = self.process.exitcode
        if code is not None and code < 0:
            return f"the scan worker was killed by signal {-code} while reading this file"
        return f"the scan worker exited (status {code}) while reading this file"

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5.0)
        self.conn.close()

    def stop(self) -> None:
        # Asked, not just hung up on: a forked worker holds a copy of this end of the pipe, so
        # it would never see EOF.
        with contextlib.suppress(OSError, ValueError):
            self.conn.send_bytes(STOP)
        self.conn.close()
        self.process.join(2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2.0)


def _failure(failed: _WorkerFailed, duration_ms: float) -> ScanReport:
    finding = Finding(failed.rule, Severity.CRITICAL, failed.message)
    return ScanReport(Format.UNKNOWN, SCANNER_NAME, (finding,), duration_ms)


def _serve(conn: multiprocessing.connection.Connection, memory_bytes: int, target: str) -> None:
    """A worker: one scan at a time, JSON in and out, until the pipe closes."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    module, _, attribute = target.partition(":")
    scan: ScanFunction = getattr(importlib.import_module(module), attribute)
    while True:
        try:
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if raw == STOP:
            return
        request = json.loads(raw)
        reply: dict[str, Any]
        try:
            report = scan(Path(request["path"]), request["name"], request["time_limit_s"])
            reply = {"report": report.to_json()}
        except MemoryError:
            reply = {"error": "memory"}
        except Exception as exc:  # reported as a finding by the parent, never as a pass
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            conn.send_bytes(json.dumps(reply).encode())
        except MemoryError:
            conn.send_bytes(b'{"error": "memory"}')
        if "error" in reply:
            return  # a worker that failed is not trusted with the next file
