"""The scan step of the pipeline: a scanner reads a staged file and reports findings.

Scanners are static: they read bytes and never import, unpickle or run model content.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Protocol

from proxy.scan.report import Finding, Format, ScanReport, Severity

# pickletools' protocol-0 string readers, used to walk untrusted opcodes, warn on every odd
# escape in a file's bytes; those are findings for the scanner to judge, not Python warnings.
# Jinja's lexer does the same on odd chat templates.
for _module in ("pickletools", "jinja2"):
    warnings.filterwarnings(
        "ignore", message="invalid escape sequence", category=DeprecationWarning, module=_module
    )


# Bump when the engine's rules change what it finds: stored reports from another version are
# scanned again (lazily on the next request, or all at once by `airlock rescan`).
SCANNER_VERSION = "engine-2026.11.27"


class Scanner(Protocol):
    name: str
    version: str

    def scan(self, path: Path, size_bytes: int, name: str) -> ScanReport:
        """Scan a complete staged file whose name in its repo is `name`. Runs in a worker
        thread; may raise (the pipeline turns any exception into a blocking finding)."""
        ...

    def close(self) -> None:
        """Release workers; called once when the mirror stops."""
        ...


def scanner_failure(scanner: str, exc: BaseException) -> ScanReport:
    """A scanner that crashed has found something: the file is not cleared (fail closed)."""
    finding = Finding(
        "scanner-error",
        Severity.CRITICAL,
        f"{scanner} failed on this file ({type(exc).__name__}: {exc}); it cannot be cleared",
    )
    return ScanReport(Format.UNKNOWN, scanner, (finding,))
