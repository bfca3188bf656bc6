"""The `airlock` command."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click
import structlog

from proxy import __version__, log
from proxy.errors import ConfigError
from proxy.scan.report import ScanReport
from proxy.settings import Settings

if TYPE_CHECKING:
    from proxy.admin.client import AdminClient


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
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Policy file, TOML (AIRLOCK_POLICY). Default: block findings and custom code.",
)
def serve(
    upstream: str | None,
    data_dir: Path | None,
    host: str | None,
    port: int | None,
    policy_file: Path | None,
) -> None:
    """Run the mirror: point HF_ENDPOINT at it. SIGHUP reloads the policy file."""
    try:
        settings = Settings.from_env(
            upstream=upstream, data_dir=data_dir, host=host, port=port, policy=policy_file
        )
    except ConfigError as exc:
        _configuration_error(exc)
    log.configure(settings.log_level)
    # Imported here, after logging is configured, and so that `airlock scan` starts without
    # loading the web stack.
    from aiohttp import web

    from proxy.app import create_app

    try:
        app = create_app(settings)  # reads the policy file and the admin accounts
    except ConfigError as exc:
        _configuration_error(exc)
    endpoint = f"http://{settings.host}:{settings.port}"
    structlog.get_logger(__name__).info(
        "airlock_listening",
        version=__version__,
        endpoint=endpoint,
        hint=f"export HF_ENDPOINT={endpoint}",
    )
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=None,
        max_line_size=settings.max_header_bytes,
        max_field_size=settings.max_header_bytes,
    )


def _configuration_error(exc: ConfigError) -> NoReturn:
    """Stop with the bad setting named, and exit status 2."""
    click.echo(f"airlock: configuration error: {exc}", err=True)
    sys.exit(2)


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
        _configuration_error(exc)
    # The same limits as the mirror: one worker process, reused, replaced after any failure.
    import proxy.scan.engine  # noqa: F401  (loaded once, before the worker forks)

    scanner = IsolatedScanner(
        workers=1,
        memory_bytes=settings.scan_memory_bytes,
        time_limit_s=settings.scan_time_limit_s,
        start_method="fork",
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


# --- administration: talks to a running Airlock's admin API ------------------------------------

_url_option = click.option(
    "--url",
    envvar="AIRLOCK_URL",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="The Airlock to administer (AIRLOCK_URL).",
)
_token_option = click.option(
    "--token",
    envvar="AIRLOCK_ADMIN_TOKEN",
    help="An admin API token (AIRLOCK_ADMIN_TOKEN); its name is recorded as the reviewer.",
)


def _client(url: str, token: str | None) -> AdminClient:
    from proxy.admin.client import AdminClient

    if not token:
        raise click.UsageError("an admin token is needed: --token or AIRLOCK_ADMIN_TOKEN")
    return AdminClient(url, token)


def _call[T](action: Callable[[], T]) -> T:
    from proxy.admin.client import AdminApiError

    try:
        return action()
    except AdminApiError as exc:
        click.echo(f"airlock: {exc.message}", err=True)
        sys.exit(1)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@main.group()
def review() -> None:
    """Work through quarantined and blocked downloads."""


@review.command("list")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(["quarantine", "block", "allow"]),
    help="Verdicts to list (repeatable). Default: quarantine and block.",
)
@click.option("--repo", help="Only repos whose id contains this text.")
@click.option("--format", "fmt", help="Only files of this format (pickle, zip, ...).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per decision, per line.")
@_url_option
@_token_option
def review_list(
    states: tuple[str, ...],
    repo: str | None,
    fmt: str | None,
    limit: int,
    as_json: bool,
    url: str,
    token: str | None,
) -> None:
    """List decisions waiting for review."""
    client = _client(url, token)
    state = ",".join(states or ("quarantine", "block"))
    answer = _call(
        lambda: client.get("/decisions", state=state, repo=repo, format=fmt, limit=limit)
    )
    for item in answer["decisions"]:
        if as_json:
            click.echo(json.dumps(item))
            continue
        reason = (
            item["reasons"][0]["detail"] or item["reasons"][0]["text"] if item["reasons"] else ""
        )
        click.echo(
            f"#{item['id']:<6} {item['verdict']:10s} {item['review_state']:8s} "
            f"{item['repo_id']}@{item['commit_sha'][:12]} {item['path']}  "
            f"({item['format']}, {_when(item['updated_at'])})  {reason[:100]}"
        )


@review.command("show")
@click.argument("decision_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@_url_option
@_token_option
def review_show(decision_id: int, as_json: bool, url: str, token: str | None) -> None:
    """A decision's findings, their locations, hashes, requests and reviews."""
    client = _client(url, token)
    detail = _call(lambda: client.get(f"/decisions/{decision_id}"))
    if as_json:
        click.echo(json.dumps(detail, indent=2))
        return
    d = detail["decision"]
    click.echo(f"Decision #{d['id']}: {d['verdict']} (review: {d['review_state']})")
    click.echo(f"  file     {d['repo_type']} {d['repo_id']}@{d['commit_sha']} {d['path']}")
    click.echo(f"  sha256   {d['sha256']}")
    click.echo(f"  git sha1 {detail['git_sha1'] or '-'}  etag {detail['etag'] or '-'}")
    click.echo(f"  format   {d['format']}  size {d['size_bytes']} bytes  lfs {detail['lfs']}")
    click.echo(f"  scanner  {detail['scanner']} {detail['scanner_version']}")
    click.echo(f"  policy   {d['policy_version']}")
    click.echo("Reasons:")
    for r in d["reasons"]:
        mode = "" if r["enforced"] else " [audit only]"
        click.echo(f"  - {r['rule']}: {r['verdict']}{mode}: {r['text']}")
        if r["detail"]:
            click.echo(f"      {r['detail']}")
    click.echo("Findings:")
    for f in detail["findings"] or []:
        where = f" at {f['location']}" if f["location"] else ""
        click.echo(f"  - {f['severity']:8s} {f['rule']}{where}: {f['message']}")
    click.echo("Requests:")
    for q in detail["requests"][:20]:
        click.echo(f"  - {_when(q['ts'])} {q['actor'] or '-'} {q['summary']} -> {q['status']}")
    click.echo("Reviews:")
    for v in detail["reviews"]:
        click.echo(f"  - {_when(v['ts'])} {v['action']} by {v['reviewer']}: {v['reason']}")


def _review(action: str, decision_id: int, reason: str, url: str, token: str | None) -> None:
    client = _client(url, token)
    item = _call(lambda: client.post(f"/decisions/{decision_id}/{action}", {"reason": reason}))
    click.echo(
        f"#{item['id']} {item['path']} in {item['repo_id']}: now {item['verdict']} "
        f"(review: {item['review_state']})"
    )


@review.command("approve")
@click.argument("decision_id", type=int)
@click.option("--reason", required=True, help="Why; recorded with your name and the time.")
@_url_option
@_token_option
def review_approve(decision_id: int, reason: str, url: str, token: str | None) -> None:
    """Waive the decision for these exact bytes (sha256) in this repo."""
    _review("approve", decision_id, reason, url, token)


@review.command("deny")
@click.argument("decision_id", type=int)
@click.option("--reason", required=True, help="Why; recorded with your name and the time.")
@_url_option
@_token_option
def review_deny(decision_id: int, reason: str, url: str, token: str | None) -> None:
    """Refuse these exact bytes in this repo, whatever the policy says later."""
    _review("deny", decision_id, reason, url, token)


@main.command()
@click.option("--all", "everything", is_flag=True, help="Scan every blob, not only stale ones.")
@_url_option
@_token_option
def rescan(everything: bool, url: str, token: str | None) -> None:
    """Scan stored files again with this scanner version and make their decisions again."""
    client = _client(url, token)
    _call(lambda: client.post("/rescan", all="1" if everything else None))
    click.echo("rescan started; decisions change as it goes (see `airlock audit`)")


@main.command()
@click.option("--since", default="24h", show_default=True, help="24h, 7d, 2026-11-27, ...")
@click.option("--limit", type=click.IntRange(1, 10_000), default=1000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines, oldest first.")
@_url_option
@_token_option
def audit(since: str, limit: int, as_json: bool, url: str, token: str | None) -> None:
    """Downloads, decisions and review actions since a time."""
    from proxy.times import parse_since

    try:
        since_ts = parse_since(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    client = _client(url, token)
    answer = _call(lambda: client.get("/audit", since=since_ts, limit=limit))
    for entry in reversed(answer["entries"]):
        if as_json:
            click.echo(json.dumps(entry))
        else:
            status = f" -> {entry['status']}" if entry["status"] is not None else ""
            click.echo(
                f"{_when(entry['ts'])} {entry['kind']:8s} {entry['actor'] or '-'}: "
                f"{entry['summary']}{status}"
            )


@main.group()
def policy() -> None:
    """Check and reload the policy file."""


@policy.command("check")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def policy_check(path: Path) -> None:
    """Validate a policy file without starting Airlock."""
    from proxy.policy import Policy

    try:
        loaded = Policy.load(path)
    except ConfigError as exc:
        click.echo(f"airlock: {exc}", err=True)
        sys.exit(1)
    click.echo(f"{path}: valid, version {loaded.version}, mode {loaded.mode.value}")


@policy.command("reload")
@_url_option
@_token_option
def policy_reload(url: str, token: str | None) -> None:
    """Make a running Airlock read its policy file again (as SIGHUP does)."""
    client = _client(url, token)
    answer = _call(lambda: client.post("/policy/reload"))
    click.echo(f"policy {answer['version']} from {answer['source']} is in force")


@main.group()
def admin() -> None:
    """Admin accounts and tokens."""


@admin.command("hash-password")
@click.option("--user", required=True, help="The account name.")
@click.password_option(help="Read from a prompt when not given.")
def admin_hash_password(user: str, password: str) -> None:
    """Print an AIRLOCK_ADMIN_USERS entry for an account."""
    from proxy.admin.auth import hash_password

    click.echo(f"{user}:{hash_password(password)}")


@admin.command("new-token")
@click.option("--name", required=True, help="Who or what uses the token (recorded on reviews).")
def admin_new_token(name: str) -> None:
    """Make an API token: prints the token once, and its AIRLOCK_ADMIN_TOKENS entry."""
    from proxy.admin.auth import hash_token, new_token

    token = new_token()
    click.echo(f"token (give to {name}, shown once): {token}")
    click.echo(f"AIRLOCK_ADMIN_TOKENS entry: {name}:{hash_token(token)}")


if __name__ == "__main__":
    main()
