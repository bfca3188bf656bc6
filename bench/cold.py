"""Cold path: a safetensors file through an empty Airlock against the same file straight from
the fake hub.

    .venv/bin/python -m bench.cold [--size-mb 1024] [--rounds 5]

Each Airlock round starts `airlock serve` on a fresh data dir, so nothing is cached: the GET
/resolve makes Airlock resolve the revision, HEAD upstream, fetch from the fake CDN, hash and
store the bytes and stream them (safetensors may stream once the header is checked; the last
byte waits for the verification). Each direct round is what a client does without Airlock:
`curl -L` on the fake hub's /resolve (302 to the CDN on another port, then the CDN GET). Both are
timed by curl over the whole client-visible exchange and alternate round by round.
Target: median Airlock time <= 1.15 x median direct time. Airlock's peak RSS is reported.

`--upstream-mb-s N` makes the fake hub send file bodies at N MB/s, like a real upstream link
(the Hub's CDN gives one connection well under 1 GB/s); without it the fake hub serves at
loopback speed, where a relay that hashes every byte on a 2-core machine is CPU-bound.
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import sys
from typing import Any
from urllib.parse import urlsplit

from bench.common import (
    MIB,
    Download,
    bench_parser,
    check_quiet_machine,
    cpu_meter,
    curl_download,
    ensure_curl,
    exit_on_sigterm,
    log,
    median,
    peak_rss_mb,
    start_airlock,
    start_fakehub,
    table,
    verdict,
    wait_for_file,
    workspace,
    write_json,
    write_safetensors,
)

REPO = "bench/cold-model"
FILE = "model.safetensors"
TARGET_RATIO = 1.15
TARGET_RSS_MB = 150.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_parser("python -m bench.cold", __doc__, rounds=5)
    parser.add_argument(
        "--upstream-mb-s",
        type=float,
        default=0.0,
        help="upstream link speed in MB/s (0 = as fast as loopback goes)",
    )
    return parser.parse_args(argv)


def head_location(url: str) -> tuple[int, str]:
    """HEAD `url` without following redirects: (status, Location)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request("HEAD", parts.path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Location", "")
    finally:
        conn.close()


def run(args: argparse.Namespace) -> int:
    ensure_curl()
    with workspace("cold", args) as (work, children):
        size = args.size_mb * MIB
        source = work / FILE
        log(f"writing a {args.size_mb} MiB safetensors file in {work}")
        sha256 = write_safetensors(source, size)

        log("starting the fake hub (it hashes the file first)")
        hub, info = start_fakehub(
            children, work, {REPO: (FILE, source)}, throttle_mb_s=args.upstream_mb_s
        )
        direct_url = f"{info['hub']}/{REPO}/resolve/main/{FILE}"
        status, location = head_location(direct_url)
        cdn = urlsplit(info["cdn"])
        if status != 302 or urlsplit(location).netloc != cdn.netloc:
            raise RuntimeError(f"expected a 302 to the CDN for {direct_url}: {status} {location}")
        log(f"direct: HEAD {direct_url} -> {status} {location.split('?')[0]}")
        curl_download(direct_url, follow=True, expect_bytes=size)  # untimed: page cache

        background_pct = check_quiet_machine()
        results: dict[str, list[Download]] = {"airlock": [], "direct": []}
        cpu: dict[str, list[dict[str, float]]] = {"airlock": [], "direct": []}
        peaks: list[float] = []
        for round_no in range(args.rounds):
            order = ["airlock", "direct"] if round_no % 2 == 0 else ["direct", "airlock"]
            for name in order:
                if name == "direct":
                    with cpu_meter({"fakehub": [hub.pid]}) as used:
                        got = curl_download(direct_url, follow=True, expect_bytes=size)
                else:
                    data_dir = work / f"airlock-data-{round_no}"
                    airlock = start_airlock(
                        children, info["hub"], data_dir, work / f"airlock-{round_no}.log"
                    )
                    url = f"{airlock.url}/{REPO}/resolve/main/{FILE}"
                    with cpu_meter({"airlock": [airlock.pid], "fakehub": [hub.pid]}) as used:
                        got = curl_download(url, follow=True, expect_bytes=size)
                    peaks.append(peak_rss_mb(airlock.pid))
                    # The last byte goes out once the file is verified; the commit (fsync,
                    # rename) follows just after.
                    stored = wait_for_file(data_dir / "blobs" / sha256, timeout_s=30.0)
                    children.stop(airlock)
                    shutil.rmtree(data_dir, ignore_errors=True)
                    if not stored:
                        raise RuntimeError(f"round {round_no + 1}: Airlock did not store the blob")
                results[name].append(got)
                cpu[name].append(used)
                extra = f", airlock peak RSS {peaks[-1]:.1f} MB" if name == "airlock" else ""
                log(
                    f"round {round_no + 1}/{args.rounds} {name:7s} {got.time_s:6.3f} s "
                    f"({got.gb_per_s:.2f} GB/s, cpu {used}, curl cpu {got.curl_cpu_s:.2f} s"
                    f"{extra})"
                )

        secs = {name: median([d.time_s for d in runs]) for name, runs in results.items()}
        gbps = {name: median([d.gb_per_s for d in runs]) for name, runs in results.items()}
        ratio = secs["airlock"] / secs["direct"]
        ratio_ok = ratio <= TARGET_RATIO
        peak_mb = max(peaks)
        rss_ok = peak_mb < TARGET_RSS_MB
        cpu_median = {
            name: {proc: median([c[proc] for c in rows]) for proc in rows[0]}
            for name, rows in cpu.items()
        }
        report: dict[str, Any] = {
            "benchmark": "cold",
            "file_bytes": size,
            "sha256": sha256,
            "rounds": args.rounds,
            "upstream_mb_s": args.upstream_mb_s or None,
            "background_cpu_busy_pct": round(background_pct, 1),
            "direct_url": direct_url,
            "downloads": {
                name: [
                    {
                        "time_s": d.time_s,
                        "ttfb_s": d.ttfb_s,
                        "gb_per_s": round(d.gb_per_s, 4),
                        "server_cpu_s": used,
                        "curl_cpu_s": round(d.curl_cpu_s, 3),
                    }
                    for d, used in zip(runs, cpu[name], strict=True)
                ]
                for name, runs in results.items()
            },
            "median_time_s": secs,
            "median_gb_per_s": gbps,
            "median_server_cpu_s": cpu_median,
            "ratio_airlock_over_direct": round(ratio, 4),
            "target_ratio_max": TARGET_RATIO,
            "ratio_pass": ratio_ok,
            "airlock_peak_rss_mb": round(peak_mb, 1),
            "airlock_peak_rss_mb_per_round": [round(p, 1) for p in peaks],
            "target_rss_mb_max": TARGET_RSS_MB,
            "rss_pass": rss_ok,
        }
        link = f"{args.upstream_mb_s:g} MB/s upstream" if args.upstream_mb_s else "loopback"
        path = write_json(f"cold-{link.split()[0]}", report)

        rows = [
            ["contender", "median s", "median GB/s", "first byte s", "cpu s (median)", "runs (s)"],
            *[
                [
                    name,
                    f"{secs[name]:.3f}",
                    f"{gbps[name]:.2f}",
                    f"{median([d.ttfb_s for d in results[name]]):.3f}",
                    ", ".join(f"{proc} {value:.2f}" for proc, value in cpu_median[name].items()),
                    " ".join(f"{d.time_s:.3f}" for d in results[name]),
                ]
                for name in ("airlock", "direct")
            ],
        ]
        print(
            f"\nCOLD ({link}): {args.size_mb} MiB safetensors, {args.rounds} rounds, fresh "
            "Airlock data dir each round, curl -L -> /dev/null"
        )
        print(table(rows))
        print(
            f"ratio airlock/direct time: {ratio:.3f}  (target <= {TARGET_RATIO})  "
            f"{verdict(ratio_ok)}"
        )
        print(
            f"airlock peak RSS (VmHWM, max over rounds): {peak_mb:.1f} MB  "
            f"(target < {TARGET_RSS_MB:.0f} MB)  {verdict(rss_ok)}"
        )
        print(f"CPU busy with other work before the rounds: {background_pct:.0f}%")
        print(f"results: {path}")
        return 0 if ratio_ok and rss_ok else 1


def main(argv: list[str] | None = None) -> int:
    exit_on_sigterm()
    return run(_parse(argv))


if __name__ == "__main__":
    sys.exit(main())
