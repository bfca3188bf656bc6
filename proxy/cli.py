"""The `airlock` command."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import structlog
from aiohttp import web

from proxy import __version__, log
from proxy.errors import ConfigError
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
    from proxy.app import create_app  # after logging is configured

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
