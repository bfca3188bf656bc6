"""The `airlock` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import structlog

from proxy import __version__, log
from proxy.errors import ConfigError
from proxy.scan.report import ScanReport
from proxy.settings import Settings


@click.group()
@click.version_option(__version__, prog_name="airlock")
def main() -> None:
    """Airlock: a verifying, scanning mirror of the Hugging Face Hub."""


@main.command()
@click.option("--upstream", help="Hub to mirror (AIRLOCK_UPSTREAM). Default https://huggingface.co")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Blobs, quarantine and registry (AIRLOCK_DATA_DIR). Default ./airlock-data",
)
@click.option("--host", help="Address to listen on (AIRLOCK_HOST). Default 127.0.0.1")
@click.option("--port", type=int, help="Port to listen on (AIRLOCK_PORT). Default 8080")
def serve(upstream: str | None, data_dir: Path | None, host: str | None, port: int | None) -> None:
    """Run the mirror: point HF_ENDPOINT at it."""
    try:
        settings = Settings.from_env(upstream=upstream, data_dir=data_dir, host=host, port=port)
    except ConfigError as exc:
        click.echo(f"airlock: configuration error: {exc}", err=True)
        sys.exit(2)
    log.configure(settings.log_level)
    # Imported here, after logging is configured, and so that `airlock scan` starts without
    # loading the web stack.
    from aiohttp import web

    from proxy.app import create_app

    endpoint = f"http://{settings.host}:{settings.port}"
    structlog.get_logger(__name__).info(
        "airlock_listening",
        version=__version__,
        endpoint=endpoint,
        hint=f"export HF_ENDPOINT={endpoint}",
    )
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=None,
        max_line_size=settings.max_header_bytes,
        max_field_size=settings.max_header_bytes,
    )


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file, per line.")
def scan(paths: tuple[Path, ...], as_json: bool) -> None:
    """Scan files and directories (recursively) and apply the default policy.

    Exit status: 0 when every file is allowed, 1 when any is blocked, 2 on usage errors.
    """
    from proxy.policy import Verdict, decide
    from proxy.scan.isolated import IsolatedScanner

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        click.echo(f"airlock: configuration error: {exc}", err=True)
        sys.exit(2)
    # The same limits as the mirror: one worker process, reused, replaced after any failure.
    scanner = IsolatedScanner(
        workers=1,
        memory_bytes=settings.scan_memory_bytes,
        time_limit_s=settings.scan_time_limit_s,
    )
    blocked = False
    try:
        for path in _files(paths):
            report = scanner.scan(path.resolve(), path.stat().st_size, path.name)
            decision = decide(report)
            blocked = blocked or decision.verdict is Verdict.BLOCK
            if as_json:
                click.echo(json.dumps(report_json(path, report, decision.verdict.value)))
            else:
                click.echo(report_text(path, report, decision.verdict.value))
    finally:
        scanner.close()
    sys.exit(1 if blocked else 0)


def _files(paths: tuple[Path, ...]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink()))
        else:
            found.append(path)
    return found


def report_json(path: Path, report: ScanReport, verdict: str) -> dict[str, object]:
    fields = report.to_json()
    return {
        "path": str(path),
        "verdict": verdict,
        "format": fields["format"],
        "findings": fields["findings"],
        "duration_ms": fields["duration_ms"],
    }


def report_text(path: Path, report: ScanReport, verdict: str) -> str:
    lines = [f"{verdict.upper():5s}  {path}  ({report.format.value}, {report.duration_ms:.1f} ms)"]
    for f in sorted(report.findings, key=lambda f: -f.severity):
        where = f" [{f.location}]" if f.location else ""
        lines.append(f"       {f.severity!s:8s} {f.rule}{where}: {f.message}")
    return "\n".join(lines)
