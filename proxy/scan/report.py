"""What scanners say: findings with a rule id, a severity, a message and a location."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum


class Severity(IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    def __str__(self) -> str:
        return self.name.lower()


class Format(StrEnum):
    """What a file is, by its content (never by its name)."""

    SAFETENSORS = "safetensors"
    PICKLE = "pickle"  # one or more raw pickles (legacy torch files are several in a row)
    PYTORCH_ZIP = "pytorch-zip"  # torch.save's zip archive with a data.pkl
    ZIP = "zip"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    location: str | None = None

    def describe(self) -> str:
        where = f" at {self.location}" if self.location else ""
        return f"{self.rule} ({self.severity}){where}: {self.message}"


@dataclass(frozen=True)
class ScanReport:
    format: Format
    scanner: str
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    duration_ms: float = 0.0
