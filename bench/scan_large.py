"""Large files: scan time and peak RSS of `airlock scan` on a 4 GiB safetensors file and on a
1 GiB PyTorch zip checkpoint, side by side with `sha256sum` of the same file.

    .venv/bin/python -m bench.scan_large [--rounds 3] [--safetensors-mb 4096] [--torch-mb 1024]

Set-up, in a temporary directory that is deleted at the end: a real safetensors file (header,
then tensor bytes written in 8 MiB chunks of random, non-zero data, so the file is not sparse)
and a real checkpoint written by `torch.save` under the client environment
(.venv-client/bin/python: a dict of float32 tensors). Needs 8 GiB of free disk in the temporary
directory's file system (checked first).

Each round runs, alternating their order, `airlock scan --json FILE` (one process per file,
timed from start to exit), `sha256sum FILE` and a Python `hashlib.file_digest` of the file
(OpenSSL uses the CPU's SHA instructions, coreutils does not; Airlock hashes with hashlib),
after one untimed run of each so that the file is in the page cache for all. `airlock scan`
scans in worker processes (a forkserver's children), so peak RSS is VmHWM polled every 10 ms
over the whole process tree. Reported: median wall time of each, the ratios scan / sha256sum
and scan / hashlib (what scanning costs against merely reading and hashing the file once), the
engine's own time as `airlock scan` reports it, the largest single-process peak RSS over the
rounds (the scanning worker) and the sum of the tree's per-process peaks.

A 1 MiB safetensors file is measured the same way, for the cost of starting `airlock scan`.

Targets: every scan allows its file; the largest process's peak RSS < 150 MB (memory stays flat
whatever the file's size); the 4 GiB safetensors scan takes less than 0.5 s more than the 1 MiB
one (only its header is read).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    MIB,
    ROOT,
    VENV_BIN,
    check_quiet_machine,
    exit_on_sigterm,
    log,
    median,
    peak_rss_mb,
    table,
    verdict,
    workspace,
    write_json,
    write_safetensors,
)

CLIENT_PYTHON = ROOT / ".venv-client" / "bin" / "python"
GIB = 1 << 30
MIN_FREE_BYTES = 8 * GIB
TARGET_RSS_MB = 150.0
# The 4 GiB safetensors scan against the same scan of a 1 MiB file (process start-up, which a
# busy 2-core machine stretches): only the header is read, so the difference stays small.
TARGET_SAFETENSORS_EXTRA_S = 0.5
SMALL = "start-up (1 MiB safetensors)"
CHUNK_BYTES = 8 * MIB
TENSORS = 4  # the checkpoint's float32 tensors, of equal size

# Run by the client environment's Python (torch), never imported here.
TORCH_SAVE = """\
import sys
import torch

path, total, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
numel = total // 4 // count
generator = torch.Generator().manual_seed(0)
state = {f"layer{i}.weight": torch.rand(numel, generator=generator) for i in range(count)}
torch.save(state, path)
"""


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mb: float  # the largest VmHWM of the process and its descendants
    peak_rss_sum_mb: float  # their VmHWMs added up: an upper bound of the whole tree's peak
    exit_code: int
    output: str


class _TreeWatcher:
    """Polls VmHWM (peak RSS) of a process and of every descendant it starts. `airlock scan`
    scans in worker processes forked by a forkserver, which the rusage of wait4 does not cover
    (and on Linux that figure also carries the RSS of the forking parent from before exec)."""

    def __init__(self, pid: int, interval_s: float = 0.01) -> None:
        self.peaks: dict[int, float] = {}
        self._pid = pid
        self._interval_s = interval_s
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _poll(self) -> None:
        while not self._done.is_set():
            for pid in _tree(self._pid):
                try:
                    peak = peak_rss_mb(pid)
                except (OSError, RuntimeError):
                    continue  # exited meanwhile
                self.peaks[pid] = max(peak, self.peaks.get(pid, 0.0))
            self._done.wait(self._interval_s)


def _tree(pid: int) -> list[int]:
    """The process and its descendants, from /proc/<pid>/task/*/children."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo.extend(int(child) for child in children.read_text().split())
            except OSError:
                continue
    return found


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scan_large", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="timed runs per file and tool")
    parser.add_argument("--safetensors-mb", type=int, default=4096, help="MiB")
    parser.add_argument("--torch-mb", type=int, default=1024, help="MiB of tensor data")
    parser.add_argument("--tmp-dir", type=Path, default=None, help="parent of the work dir")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (for debugging)")
    return parser.parse_args(argv)


def _timed(argv: list[str]) -> Run:
    """Run a command to completion: wall time, peak RSS of its process tree (polled; 0 for a
    process too short-lived to be seen), exit status and stdout."""
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors
        )
        watcher = _TreeWatcher(proc.pid)
        assert proc.stdout is not None
        with proc.stdout:
            out = proc.stdout.read()
        watcher.stop()  # before the reap: its /proc entries are still there until then
        code = proc.wait()
        seconds = time.perf_counter() - started
        if code not in (0, 1):
            errors.seek(0)
            log(f"{argv[0]} exited {code}: {errors.read()[-500:]!r}")
    peaks = list(watcher.peaks.values()) or [0.0]
    return Run(seconds, max(peaks), sum(peaks), code, out.decode(errors="replace"))


def _scan(path: Path) -> Run:
    return _timed([str(VENV_BIN / "airlock"), "scan", "--json", str(path)])


def _sha256sum(path: Path) -> Run:
    return _timed(["sha256sum", str(path)])


# coreutils' sha256sum does not use the CPU's SHA instructions, OpenSSL (hashlib) does: Airlock
# hashes with hashlib, so both are shown.
HASHLIB = (
    "import hashlib, sys; print(hashlib.file_digest(open(sys.argv[1], 'rb'), 'sha256').hexdigest())"
)


def _hashlib(path: Path) -> Run:
    return _timed([str(VENV_BIN / "python"), "-c", HASHLIB, str(path)])


TOOLS = {"scan": _scan, "sha256sum": _sha256sum, "hashlib": _hashlib}


def _report_of(run: Run) -> dict[str, Any]:
    try:
        line: dict[str, Any] = json.loads(run.output.splitlines()[0])
    except (IndexError, ValueError):
        return {}
    return line


def _verdict_of(run: Run) -> str:
    line = _report_of(run)
    if not line:
        return f"no report (exit {run.exit_code})"
    rules = sorted({str(f["rule"]) for f in line.get("findings", [])})
    return str(line.get("verdict")) + (f" {rules}" if rules else "")


def _engine_ms(run: Run) -> float:
    """The engine's own time for the file, as `airlock scan` reports it (no process start)."""
    return float(_report_of(run).get("duration_ms", float("nan")))


def _write_torch_checkpoint(path: Path, data_bytes: int) -> None:
    if not CLIENT_PYTHON.is_file():
        raise SystemExit(f"no client environment at {CLIENT_PYTHON} (torch is needed)")
    subprocess.run(
        [str(CLIENT_PYTHON), "-c", TORCH_SAVE, str(path), str(data_bytes), str(TENSORS)],
        check=True,
        timeout=900,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(path.parent)},
    )


def _measure(path: Path, rounds: int) -> dict[str, list[Run]]:
    for tool in TOOLS.values():
        tool(path)  # untimed: afterwards the page cache holds the file for every tool
    runs: dict[str, list[Run]] = {name: [] for name in TOOLS}
    for index in range(rounds):
        order = list(TOOLS) if index % 2 == 0 else list(reversed(TOOLS))
        for name in order:
            runs[name].append(TOOLS[name](path))
    return runs


def run(args: argparse.Namespace) -> int:
    if shutil.which("sha256sum") is None:
        raise SystemExit("sha256sum (coreutils) is needed for the side-by-side figure")
    with workspace("scan-large", args) as (work, _children):
        free = shutil.disk_usage(work).free
        if free < MIN_FREE_BYTES:
            log(f"only {free / GIB:.1f} GiB free under {work}; this benchmark needs 8 GiB")
            return 2
        files = {
            SMALL: work / "small.safetensors",
            "safetensors": work / "model.safetensors",
            "torch zip": work / "pytorch_model.bin",
        }
        write_safetensors(files[SMALL], MIB)
        log(f"writing {args.safetensors_mb} MiB safetensors file")
        write_safetensors(files["safetensors"], args.safetensors_mb * MIB, chunk_bytes=CHUNK_BYTES)
        log(f"writing {args.torch_mb} MiB torch.save checkpoint (client env)")
        _write_torch_checkpoint(files["torch zip"], args.torch_mb * MIB)
        background_pct = check_quiet_machine()

        results: dict[str, dict[str, Any]] = {}
        for label, path in files.items():
            log(f"measuring {label} ({path.stat().st_size / GIB:.2f} GiB), {args.rounds} rounds")
            runs = _measure(path, args.rounds)
            scan_s = median([r.seconds for r in runs["scan"]])
            hash_s = median([r.seconds for r in runs["sha256sum"]])
            hashlib_s = median([r.seconds for r in runs["hashlib"]])
            results[label] = {
                "file": path.name,
                "size_bytes": path.stat().st_size,
                "verdicts": sorted({_verdict_of(r) for r in runs["scan"]}),
                "scan_s": [round(r.seconds, 3) for r in runs["scan"]],
                "sha256sum_s": [round(r.seconds, 3) for r in runs["sha256sum"]],
                "scan_median_s": round(scan_s, 3),
                "engine_median_ms": round(median([_engine_ms(r) for r in runs["scan"]]), 1),
                "sha256sum_median_s": round(hash_s, 3),
                "ratio_scan_to_sha256sum": round(scan_s / hash_s, 3) if hash_s else None,
                "hashlib_s": [round(r.seconds, 3) for r in runs["hashlib"]],
                "hashlib_median_s": round(hashlib_s, 3),
                "ratio_scan_to_hashlib": round(scan_s / hashlib_s, 3) if hashlib_s else None,
                "scan_peak_rss_mb": round(max(r.peak_rss_mb for r in runs["scan"]), 1),
                "scan_peak_rss_sum_mb": round(max(r.peak_rss_sum_mb for r in runs["scan"]), 1),
            }

    allowed = all(r["verdicts"] == ["allow"] for r in results.values())
    rss_ok = all(r["scan_peak_rss_mb"] < TARGET_RSS_MB for r in results.values())
    extra_s = results["safetensors"]["scan_median_s"] - results[SMALL]["scan_median_s"]
    fast_ok = extra_s < TARGET_SAFETENSORS_EXTRA_S
    report = {
        "rounds": args.rounds,
        "background_cpu_pct": round(background_pct, 1),
        "files": results,
        "targets": {"rss_mb": TARGET_RSS_MB, "safetensors_extra_s": TARGET_SAFETENSORS_EXTRA_S},
        "safetensors_extra_s": round(extra_s, 3),
        "allowed_pass": allowed,
        "rss_pass": rss_ok,
        "safetensors_time_pass": fast_ok,
    }
    out = write_json("scan_large", report)
    rows = [
        [
            "file",
            "GiB",
            "scan s",
            "engine ms",
            "sha256sum s",
            "scan/sha256sum",
            "hashlib s",
            "scan/hashlib",
            "peak RSS MB",
            "all procs MB",
            "verdict",
        ],
        *[
            [
                label,
                f"{r['size_bytes'] / GIB:.2f}",
                f"{r['scan_median_s']:.3f}",
                f"{r['engine_median_ms']:.1f}",
                f"{r['sha256sum_median_s']:.3f}",
                f"{r['ratio_scan_to_sha256sum']:.3f}",
                f"{r['hashlib_median_s']:.3f}",
                f"{r['ratio_scan_to_hashlib']:.3f}",
                f"{r['scan_peak_rss_mb']:.1f}",
                f"{r['scan_peak_rss_sum_mb']:.1f}",
                ", ".join(r["verdicts"]),
            ]
            for label, r in results.items()
        ],
    ]
    print(
        f"\nSCAN LARGE: airlock scan --json vs sha256sum and hashlib (Python + OpenSSL) on the "
        f"same file, medians of {args.rounds} rounds"
    )
    print(table(rows))
    print(f"every file allowed: {verdict(allowed)}")
    print(f"scan peak RSS < {TARGET_RSS_MB:.0f} MB: {verdict(rss_ok)}")
    print(
        f"{args.safetensors_mb} MiB safetensors scan takes {extra_s:.3f} s more than a 1 MiB one "
        f"(target < {TARGET_SAFETENSORS_EXTRA_S:g} s: header only): {verdict(fast_ok)}"
    )
    print(f"CPU busy with other work before the rounds: {background_pct:.0f}%")
    print(f"results: {out}")
    return 0 if allowed and rss_ok and fast_ok else 1


def main(argv: list[str] | None = None) -> int:
    exit_on_sigterm()
    return run(_parse(argv))


if __name__ == "__main__":
    sys.exit(main())
