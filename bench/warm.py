"""Warm path: a cached 1 GiB file through Airlock against nginx serving the very same blob.

    .venv/bin/python -m bench.warm [--size-mb 1024] [--rounds 5]

Set-up: a safetensors file is generated on disk and served by the fake hub as an LFS file;
`airlock serve` runs as a subprocess with its own data dir; one download through Airlock fills
its cache; nginx (sendfile on, one worker) is then pointed at Airlock's blob file itself. The
measured downloads (curl, whole file, to /dev/null) alternate between the two contenders.
Targets: Airlock's throughput >= 0.85 x nginx's; Airlock's peak RSS < 150 MB.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from bench.common import (
    MIB,
    Download,
    bench_parser,
    check_quiet_machine,
    cpu_meter,
    curl_download,
    curl_sha256,
    ensure_curl,
    ensure_nginx,
    exit_on_sigterm,
    log,
    median,
    nginx_pids,
    peak_rss_mb,
    reset_peak_rss,
    rss_mb,
    start_airlock,
    start_fakehub,
    start_nginx,
    table,
    verdict,
    wait_for_file,
    workspace,
    write_json,
    write_safetensors,
)

REPO = "bench/warm-model"
FILE = "model.safetensors"
TARGET_RATIO = 0.85
TARGET_RSS_MB = 150.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    return bench_parser("python -m bench.warm", __doc__, rounds=7).parse_args(argv)


def run(args: argparse.Namespace) -> int:
    ensure_curl()
    ensure_nginx()  # installs it (apt) when missing, before anything is timed
    with workspace("warm", args) as (work, children):
        size = args.size_mb * MIB
        source = work / FILE
        log(f"writing a {args.size_mb} MiB safetensors file in {work}")
        sha256 = write_safetensors(source, size)

        log("starting the fake hub (it hashes the file first)")
        _hub, info = start_fakehub(children, work, {REPO: (FILE, source)})
        commit: str = info["added"][REPO]

        data_dir = work / "airlock-data"
        airlock = start_airlock(children, info["hub"], data_dir, work / "airlock.log")
        log(f"airlock pid {airlock.pid} on {airlock.url}; filling its cache")
        fill = curl_download(
            f"{airlock.url}/{REPO}/resolve/main/{FILE}", follow=True, expect_bytes=size
        )
        blob = data_dir / "blobs" / sha256
        if not wait_for_file(blob, timeout_s=60.0):
            raise RuntimeError(f"Airlock did not store the blob at {blob}")
        fill_peak_mb = peak_rss_mb(airlock.pid)
        reset_ok = reset_peak_rss(airlock.pid)

        nginx = start_nginx(children, work, blob.parent, f"/{sha256}")
        urls = {
            "airlock": f"{airlock.url}/{REPO}/resolve/{commit}/{FILE}",
            "nginx": f"{nginx.url}/{sha256}",
        }
        pids = {"airlock": [airlock.pid], "nginx": nginx_pids(nginx)}
        for url in urls.values():  # untimed: connections, page cache, lazy imports
            curl_download(url, expect_bytes=size)

        background_pct = check_quiet_machine()
        results: dict[str, list[Download]] = {"airlock": [], "nginx": []}
        server_cpu: dict[str, list[float]] = {"airlock": [], "nginx": []}
        for round_no in range(args.rounds):
            order = ["airlock", "nginx"] if round_no % 2 == 0 else ["nginx", "airlock"]
            for name in order:
                with cpu_meter({name: pids[name]}) as used:
                    got = curl_download(urls[name], expect_bytes=size)
                results[name].append(got)
                server_cpu[name].append(used[name])
                log(
                    f"round {round_no + 1}/{args.rounds} {name:7s} {got.gb_per_s:6.2f} GB/s "
                    f"({got.time_s:.3f} s, server cpu {used[name]:.2f} s, "
                    f"curl cpu {got.curl_cpu_s:.2f} s)"
                )

        log("verifying the bytes of one Airlock download")
        got_sha, got_bytes = curl_sha256(urls["airlock"])
        bytes_ok = got_sha == sha256 and got_bytes == size
        warm_peak_mb = peak_rss_mb(airlock.pid)
        peak_mb = max(warm_peak_mb, fill_peak_mb)
        final_rss_mb = rss_mb(airlock.pid)

        gbps = {name: median([d.gb_per_s for d in runs]) for name, runs in results.items()}
        secs = {name: median([d.time_s for d in runs]) for name, runs in results.items()}
        ratio = gbps["airlock"] / gbps["nginx"]
        ratio_ok = ratio >= TARGET_RATIO
        rss_ok = peak_mb < TARGET_RSS_MB
        report: dict[str, Any] = {
            "benchmark": "warm",
            "file_bytes": size,
            "sha256": sha256,
            "rounds": args.rounds,
            "background_cpu_busy_pct": round(background_pct, 1),
            "urls": urls,
            "cache_fill_s": fill.time_s,
            "downloads": {
                name: [
                    {
                        "time_s": d.time_s,
                        "ttfb_s": d.ttfb_s,
                        "gb_per_s": round(d.gb_per_s, 4),
                        "server_cpu_s": cpu,
                        "curl_cpu_s": round(d.curl_cpu_s, 3),
                    }
                    for d, cpu in zip(runs, server_cpu[name], strict=True)
                ]
                for name, runs in results.items()
            },
            "median_gb_per_s": gbps,
            "median_time_s": secs,
            "median_server_cpu_s": {name: median(v) for name, v in server_cpu.items()},
            "ratio_airlock_over_nginx": round(ratio, 4),
            "target_ratio_min": TARGET_RATIO,
            "ratio_pass": ratio_ok,
            "airlock_peak_rss_mb": round(peak_mb, 1),
            "airlock_peak_rss_mb_cache_fill": round(fill_peak_mb, 1),
            "airlock_peak_rss_mb_warm_only": round(warm_peak_mb, 1) if reset_ok else None,
            "airlock_rss_mb_at_end": round(final_rss_mb, 1),
            "target_rss_mb_max": TARGET_RSS_MB,
            "rss_pass": rss_ok,
            "bytes_verified": bytes_ok,
        }
        path = write_json("warm", report)

        rows = [
            ["contender", "median GB/s", "median s", "server cpu s", "runs (GB/s)"],
            *[
                [
                    name,
                    f"{gbps[name]:.2f}",
                    f"{secs[name]:.3f}",
                    f"{median(server_cpu[name]):.2f}",
                    " ".join(f"{d.gb_per_s:.2f}" for d in results[name]),
                ]
                for name in ("airlock", "nginx")
            ],
        ]
        warm_only = f"{warm_peak_mb:.1f}" if reset_ok else "n/a"
        print(f"\nWARM: {args.size_mb} MiB cached file, {args.rounds} rounds, curl -> /dev/null")
        print(table(rows))
        print(
            f"ratio airlock/nginx throughput: {ratio:.3f}  "
            f"(target >= {TARGET_RATIO})  {verdict(ratio_ok)}"
        )
        print(
            f"airlock peak RSS (VmHWM): {peak_mb:.1f} MB  (target < {TARGET_RSS_MB:.0f} MB)  "
            f"{verdict(rss_ok)}   [cache fill {fill_peak_mb:.1f} MB, warm rounds only "
            f"{warm_only} MB]"
        )
        print(f"bytes of an Airlock download match the file's sha256: {verdict(bytes_ok)}")
        print(f"CPU busy with other work before the rounds: {background_pct:.0f}%")
        print(f"results: {path}")
        return 0 if ratio_ok and rss_ok and bytes_ok else 1


def main(argv: list[str] | None = None) -> int:
    exit_on_sigterm()
    return run(_parse(argv))


if __name__ == "__main__":
    sys.exit(main())
