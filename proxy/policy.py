"""Policy: turns a scan report into a decision.

This is the default policy only: block any finding at MEDIUM severity or above. Rules loaded
from a policy file come with the policy issue.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from proxy.scan.report import ScanReport, Severity

BLOCK_AT = Severity.MEDIUM


class Verdict(StrEnum):
    ALLOW = "allow"
    BLOCK = "block"


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...]


def decide(report: ScanReport) -> Decision:
    blocking = [f for f in report.findings if f.severity >= BLOCK_AT]
    if blocking:
        return Decision(Verdict.BLOCK, tuple(f.describe() for f in blocking))
    return Decision(Verdict.ALLOW, ())
