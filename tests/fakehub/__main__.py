"""``python -m tests.fakehub --port N --cdn-port M --cas-port K [--demo]``.

Prints one JSON line with the URLs (and the demo repos) and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from .demo import populate
from .faults import Fault
from .hub import FakeHub


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fakehub", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="hub port (0 = ephemeral)")
    parser.add_argument("--cdn-port", type=int, default=0)
    parser.add_argument("--cas-port", type=int, default=0)
    parser.add_argument("--page-size", type=int, default=50)
    parser.add_argument("--demo", action="store_true", help="serve the demo repo set")
    parser.add_argument("--big-mb", type=int, default=0, help="demo: add acme/big-model of N MiB")
    parser.add_argument("--log", type=Path, help="write the request log (JSON lines) on exit")
    parser.add_argument(
        "--add-file",
        action="append",
        default=[],
        metavar="REPO:PATH=FILE",
        help="serve local FILE as PATH of model repo REPO (LFS for *.safetensors); repeatable",
    )
    parser.add_argument(
        "--throttle-mb-s",
        type=float,
        default=0.0,
        help="serve every file body at this rate (MB/s), like a real upstream link",
    )
    return parser.parse_args(argv)


def _add_files(hub: FakeHub, specs: list[str]) -> dict[str, str]:
    """``REPO:PATH=FILE`` entries -> one commit per repo; returns {repo: main sha}."""
    by_repo: dict[str, dict[str, bytes | Path]] = {}
    for spec in specs:
        repo, sep, rest = spec.partition(":")
        path, eq, file = rest.partition("=")
        if not (sep and eq and repo and path and file):
            raise SystemExit(f"--add-file: expected REPO:PATH=FILE, got {spec!r}")
        by_repo.setdefault(repo, {})[path] = Path(file)
    return {repo: hub.add_repo(repo, files) for repo, files in by_repo.items()}


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    done = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    hub = FakeHub(
        args.page_size,
        host=args.host,
        port=args.port,
        cdn_port=args.cdn_port,
        cas_port=args.cas_port,
    )
    with tempfile.TemporaryDirectory(prefix="fakehub-") as tmp:
        info: dict[str, Any] = {}
        if args.demo:
            info = populate(hub, Path(tmp), args.big_mb)
        if args.add_file:
            info["added"] = _add_files(hub, args.add_file)
        if args.throttle_mb_s > 0:
            hub.set_fault(Fault.THROTTLE, times=None, rate_bytes_s=int(args.throttle_mb_s * 1e6))
        with hub:
            line = {"hub": hub.url, "cdn": hub.cdn_url, "cas": hub.cas_url, **info}
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()
            while not done.wait(0.5):
                pass
            if args.log is not None:
                hub.write_log(args.log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
