"""A faithful fake Hugging Face Hub (hub + CDN + Xet CAS stub) for tests and benchmarks."""

from .faults import Fault, FaultRule
from .hub import FakeHub, FileInfo
from .records import RequestRecord

__all__ = ["FakeHub", "Fault", "FaultRule", "FileInfo", "RequestRecord"]
