"""The scan step of the pipeline: a scanner reads a staged file and reports findings.

Scanners are static: they read bytes and never import, unpickle or run model content.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

from proxy.scan import safetensors
from proxy.scan.report import Finding, Format, ScanReport, Severity


class Scanner(Protocol):
    name: str

    def scan(self, path: Path, size_bytes: int) -> ScanReport:
        """Scan a complete staged file. Runs in a worker thread; may raise (the pipeline turns
        any exception into a blocking finding)."""
        ...


class ClearAllPlaceholderScanner:
    """PLACEHOLDER: clears every file that is not safetensors without looking inside it.

    It stands in for the format scanners until they land (the scanner issue). Safetensors
    headers are checked for real, because the streaming release point depends on them.
    """

    name = "placeholder-clear-all"

    def scan(self, path: Path, size_bytes: int) -> ScanReport:
        started = time.perf_counter()
        with path.open("rb") as handle:
            prefix = handle.read(safetensors.PREFIX_BYTES + 1)
            length = safetensors.header_length(prefix)
            if length is None:
                return ScanReport(Format.UNKNOWN, self.name, (), _ms_since(started))
            handle.seek(safetensors.PREFIX_BYTES)
            header = handle.read(length)
        findings = tuple(safetensors.check_header(header, size_bytes))
        return ScanReport(Format.SAFETENSORS, self.name, findings, _ms_since(started))


def scanner_failure(scanner: str, exc: BaseException) -> ScanReport:
    """A scanner that crashed has found something: the file is not cleared (fail closed)."""
    finding = Finding(
        "scanner-error",
        Severity.CRITICAL,
        f"{scanner} failed on this file ({type(exc).__name__}: {exc}); it cannot be cleared",
    )
    return ScanReport(Format.UNKNOWN, scanner, (finding,))


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
