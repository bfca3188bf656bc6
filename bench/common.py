"""Shared plumbing for the benchmarks: child processes, curl, /proc readings, nginx, output.

Everything runs on loopback, in a temporary directory, as child processes of the benchmark that
are stopped (SIGTERM, then SIGKILL) when it ends, whatever the reason.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
OUT_DIR = ROOT / "bench" / "out"
MB = 1_000_000
GB = 1_000_000_000
MIB = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Loopback only: neither urllib nor curl may pick up a proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def log(message: str) -> None:
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so that `finally` blocks stop the children."""

    def _handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _handler)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- the test file ----------------------------------------------------------------------------


def safetensors_header(data_bytes: int) -> bytes:
    """8-byte little-endian length, then the JSON header padded with spaces to 8 bytes."""
    header = {"weight": {"dtype": "U8", "shape": [data_bytes], "data_offsets": [0, data_bytes]}}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


def write_safetensors(path: Path, total_bytes: int, *, chunk_bytes: int = 16 * MIB) -> str:
    """Write a safetensors file of exactly `total_bytes` in chunks; returns its sha256."""
    data_bytes = total_bytes
    for _ in range(4):  # the header's length depends (barely) on the number of digits
        data_bytes = total_bytes - len(safetensors_header(data_bytes))
    header = safetensors_header(data_bytes)
    if len(header) + data_bytes != total_bytes or data_bytes <= 0:
        raise ValueError(f"cannot build a safetensors file of {total_bytes} bytes")
    digest = hashlib.sha256(header)
    # One random block, each copy with a different first 8 bytes: random-ish and cheap.
    block = bytearray(os.urandom(min(chunk_bytes, data_bytes)))
    with path.open("wb") as handle:
        handle.write(header)
        left = data_bytes
        counter = 0
        while left > 0:
            block[:8] = struct.pack("<Q", counter)
            piece = memoryview(block)[: min(left, len(block))]
            handle.write(piece)
            digest.update(piece)
            left -= len(piece)
            counter += 1
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(8 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


# --- /proc readings ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def peak_rss_mb(pid: int) -> float:
    """VmHWM (peak resident set size) in MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / MB
    raise RuntimeError(f"no VmHWM for pid {pid}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / MB
    raise RuntimeError(f"no VmRSS for pid {pid}")


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not permitted."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def children_cpu_seconds() -> float:
    """CPU time of this process's reaped children (curl runs are reaped one at a time)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def background_load_pct(seconds: float = 1.0) -> float:
    """How busy the CPUs are (percent) while the benchmark itself idles: other work on the
    machine skews every figure on a 2-core box, so it is measured and reported."""
    busy0, total0 = _cpu_ticks()
    time.sleep(seconds)
    busy1, total1 = _cpu_ticks()
    return 100.0 * (busy1 - busy0) / max(1, total1 - total0)


def check_quiet_machine() -> float:
    load = background_load_pct()
    if load > 10.0:
        log(
            f"WARNING: the CPUs are {load:.0f}% busy while the benchmark idles: other work is "
            "running on this machine and the figures will be skewed"
        )
    return load


# --- child processes --------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class Children:
    """Every process the benchmark starts; `stop_all` ends them (used in `finally`)."""

    def __init__(self) -> None:
        self._children: list[Child] = []

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        stdout: int | IO[bytes] | None = None,
    ) -> Child:
        with log_path.open("ab") as log_file:
            proc = subprocess.Popen(
                list(argv),
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout if stdout is not None else log_file,
                stderr=log_file,
                start_new_session=True,  # a Ctrl-C on the terminal reaches the bench only
            )
        child = Child(name, proc, log_path)
        self._children.append(child)
        return child

    def stop(self, child: Child, timeout_s: float = 15.0) -> None:
        if child.alive():
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGTERM)
            try:
                child.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.kill()
                child.proc.wait(timeout=timeout_s)
        if child.proc.stdout is not None:
            child.proc.stdout.close()
        if child in self._children:
            self._children.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self._children)):
            try:
                self.stop(child)
            except Exception as exc:  # keep stopping the others
                log(f"could not stop {child.name} (pid {child.pid}): {exc}")


def bench_parser(prog: str, description: str | None, *, rounds: int) -> argparse.ArgumentParser:
    """The options every benchmark takes."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MiB")
    parser.add_argument(
        "--rounds", type=int, default=rounds, help="measured downloads per contender"
    )
    parser.add_argument("--tmp-dir", type=Path, default=None, help="parent of the work dir")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (for debugging)")
    return parser


@contextlib.contextmanager
def workspace(name: str, args: argparse.Namespace) -> Iterator[tuple[Path, Children]]:
    """A temporary work dir and the processes a benchmark starts; at the end (errors and
    Ctrl-C included) the processes are stopped and the dir deleted, unless --keep."""
    work = Path(tempfile.mkdtemp(prefix=f"airlock-bench-{name}-", dir=args.tmp_dir))
    children = Children()
    try:
        yield work, children
    finally:
        children.stop_all()
        if args.keep:
            log(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def wait_for_file(path: Path, timeout_s: float) -> bool:
    """True once `path` exists (polling), False if it does not appear within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not path.is_file():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def http_status(url: str, timeout_s: float = 2.0) -> int | None:
    try:
        with _OPENER.open(url, timeout=timeout_s) as resp:
            status: int = resp.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def wait_http_ok(child: Child, url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            raise RuntimeError(f"{child.name} exited early:\n{child.log_tail()}")
        if http_status(url) == 200:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{child.name} did not answer 200 on {url}:\n{child.log_tail()}")


def start_fakehub(
    children: Children,
    work: Path,
    files: dict[str, tuple[str, Path]],
    *,
    throttle_mb_s: float = 0.0,
) -> tuple[Child, dict[str, Any]]:
    """Start `python -m tests.fakehub` serving `files` ({repo: (path in repo, local file)}).

    Returns the child and its JSON line (`hub`, `cdn`, `added` = {repo: main commit sha})."""
    argv = [str(VENV_BIN / "python"), "-m", "tests.fakehub", "--port", "0", "--cdn-port", "0"]
    argv += ["--cas-port", "0", "--throttle-mb-s", str(throttle_mb_s)]
    for repo, (path, local) in files.items():
        argv += ["--add-file", f"{repo}:{path}={local}"]
    child = children.spawn("fakehub", argv, work / "fakehub.log", stdout=subprocess.PIPE)
    assert child.proc.stdout is not None
    line = child.proc.stdout.readline()  # printed once the files are hashed and it listens
    if not line:
        raise RuntimeError(f"fakehub exited before printing its URLs:\n{child.log_tail()}")
    info: dict[str, Any] = json.loads(line)
    return child, info


def start_airlock(children: Children, upstream: str, data_dir: Path, log_path: Path) -> Child:
    port = free_port()
    env = dict(os.environ)
    for key in list(env):
        if key.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            del env[key]
    env["AIRLOCK_UPSTREAM_CDN_HOSTS"] = "127.0.0.1"
    env["AIRLOCK_LOG_LEVEL"] = "warning"
    argv = [str(VENV_BIN / "airlock"), "serve", "--upstream", upstream]
    argv += ["--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
    child = children.spawn("airlock", argv, log_path, env=env)
    child.url = f"http://127.0.0.1:{port}"
    wait_http_ok(child, child.url + "/healthz")
    return child


# --- curl -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Download:
    size_bytes: int
    time_s: float  # curl's time_total: connect to last byte, redirects included
    ttfb_s: float  # curl's time_starttransfer: first byte of the (last) response
    http_code: int
    curl_cpu_s: float

    @property
    def gb_per_s(self) -> float:
        return self.size_bytes / GB / self.time_s if self.time_s > 0 else 0.0


def ensure_curl() -> str:
    found = shutil.which("curl")
    if found is None:
        apt_install(["curl"])
        found = shutil.which("curl")
    if found is None:
        raise RuntimeError("curl is not available and could not be installed")
    return found


def curl_download(url: str, *, follow: bool = False, expect_bytes: int | None = None) -> Download:
    """Download `url` to /dev/null with curl; its own figures (size, total time) are used."""
    argv = [ensure_curl(), "-s", "--noproxy", "*", "-o", "/dev/null"]
    argv += ["-w", "%{size_download} %{time_total} %{time_starttransfer} %{http_code}"]
    if follow:
        argv.append("-L")
    argv.append(url)
    before = children_cpu_seconds()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    curl_cpu = children_cpu_seconds() - before
    if done.returncode != 0:
        raise RuntimeError(f"curl {url} failed ({done.returncode}): {done.stderr.strip()}")
    size, seconds, ttfb, code = done.stdout.split()
    result = Download(int(size), float(seconds), float(ttfb), int(code), curl_cpu)
    if result.http_code != 200:
        raise RuntimeError(f"curl {url}: HTTP {result.http_code}")
    if expect_bytes is not None and result.size_bytes != expect_bytes:
        raise RuntimeError(f"curl {url}: got {result.size_bytes} bytes, expected {expect_bytes}")
    return result


def curl_sha256(url: str, *, follow: bool = False) -> tuple[str, int]:
    """Download `url` through curl into a pipe and hash it: (sha256, bytes)."""
    argv = [ensure_curl(), "-s", "-f", "--noproxy", "*"]
    if follow:
        argv.append("-L")
    argv.append(url)
    digest = hashlib.sha256()
    count = 0
    with subprocess.Popen(argv, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        while chunk := proc.stdout.read(8 * MIB):
            digest.update(chunk)
            count += len(chunk)
        code = proc.wait()
    if code != 0:
        raise RuntimeError(f"curl {url} failed ({code})")
    return digest.hexdigest(), count


# --- nginx ------------------------------------------------------------------------------------


def apt_install(packages: list[str]) -> None:
    log(f"installing {' '.join(packages)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *packages], check=True, env=env)


def ensure_nginx() -> str:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and Path(candidate).is_file():
            return candidate
    policy = subprocess.run(
        ["apt-cache", "policy", "nginx-light"], capture_output=True, text=True, check=False
    )
    has_light = (
        "Candidate:" in policy.stdout
        and "(none)" not in policy.stdout.split("Candidate:", 1)[1].split("\n", 1)[0]
    )
    apt_install(["nginx-light" if has_light else "nginx"])
    if not Path("/usr/sbin/nginx").is_file():
        raise RuntimeError("nginx could not be installed")
    return "/usr/sbin/nginx"


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
user root;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    default_type application/octet-stream;
    # sendfile as in production set-ups; no tcp_nopush (TCP_CORK), which is ~35% slower on
    # loopback here: the baseline should be nginx at its fastest.
    sendfile on;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


def start_nginx(children: Children, work: Path, root: Path, probe_path: str) -> Child:
    """nginx (one worker, sendfile) serving `root` on a loopback port (its URL in `.url`)."""
    binary = ensure_nginx()
    tmp = work / "nginx"
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, root=root))
    child = children.spawn("nginx", [binary, "-p", str(tmp), "-c", str(conf)], tmp / "stderr.log")
    child.url = f"http://127.0.0.1:{port}"
    wait_http_ok(child, child.url + probe_path, timeout_s=20)
    return child


def nginx_pids(master: Child) -> list[int]:
    """The master and its worker(s)."""
    pids = [master.pid]
    with contextlib.suppress(OSError):
        pids += [
            int(p)
            for p in Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
        ]
    return pids


# --- reporting --------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def write_json(name: str, data: dict[str, Any]) -> Path:
    """bench/out/<name>.json (gitignored), replaced by each run."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


@contextlib.contextmanager
def cpu_meter(pids: dict[str, list[int]]) -> Iterator[dict[str, float]]:
    """CPU seconds used by each named group of processes while the block runs."""
    before = {name: sum(_cpu_or_zero(p) for p in group) for name, group in pids.items()}
    used: dict[str, float] = {}
    yield used
    for name, group in pids.items():
        used[name] = round(sum(_cpu_or_zero(p) for p in group) - before[name], 3)


def _cpu_or_zero(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except (OSError, ValueError, IndexError):
        return 0.0
