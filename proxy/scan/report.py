"""What scanners say: findings with a rule id, a severity, a message and a location."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any


class Severity(IntEnum):
    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    def __str__(self) -> str:
        return self.name.lower()


class Format(StrEnum):
    """What a file is, by its content (never by its name): every reading `sniff` can make."""

    SAFETENSORS = "safetensors"
    PICKLE = "pickle"
    ZIP = "zip"
    TAR = "tar"
    GZIP = "gzip"
    BZIP2 = "bzip2"
    XZ = "xz"
    ZSTD = "zstd"
    ZLIB = "zlib"  # joblib's default compressor writes a bare zlib stream
    LZMA = "lzma"  # the legacy .lzma ("alone") format, one of joblib's compressors
    SEVEN_ZIP = "7z"
    NUMPY = "numpy"
    GGUF = "gguf"
    GGML = "ggml"  # the formats before GGUF (GGML, GGMF, GGJT, GGLA): weights only
    HDF5 = "hdf5"
    ONNX = "onnx"
    TFLITE = "tflite"
    PROTOBUF_SAVEDMODEL = "savedmodel"
    JSON = "json"
    PYTHON_SOURCE = "python"
    TEXT = "text"
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
    # Every format found in the file, nested members included (a torch zip: zip and pickle).
    contents: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format.value,
            "scanner": self.scanner,
            "findings": [
                {
                    "rule": f.rule,
                    "severity": str(f.severity),
                    "message": f.message,
                    "location": f.location,
                }
                for f in self.findings
            ],
            "duration_ms": self.duration_ms,
            "contents": list(self.contents),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScanReport:
        """The inverse of `to_json`; raises KeyError or ValueError on anything malformed."""
        findings = tuple(
            Finding(
                str(f["rule"]),
                Severity[str(f["severity"]).upper()],
                str(f["message"]),
                None if f["location"] is None else str(f["location"]),
            )
            for f in data["findings"]
        )
        return cls(
            Format(data["format"]),
            str(data["scanner"]),
            findings,
            float(data["duration_ms"]),
            tuple(str(c) for c in data.get("contents", ())),
        )
