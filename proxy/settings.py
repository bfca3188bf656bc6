"""Airlock's settings: one frozen value, built once at start-up and passed down.

`Settings.from_env()` is the only place that reads `os.environ`. Tests build `Settings` directly.
Every field is documented in `deploy/airlock.env.example` (a test checks that).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from proxy.errors import ConfigError

ENV_PREFIX = "AIRLOCK_"
_ACCOUNT_NAME_RE = re.compile(r"[A-Za-z0-9._@-]{1,64}")


@dataclass(frozen=True)
class Settings:
    """Everything Airlock can be configured with. Units are in the names."""

    # Where Airlock fetches from. Only this origin (and the CDN hosts it redirects to) is contacted.
    upstream: str = "https://huggingface.co"
    # Blobs, staging, quarantine and the SQLite registry live here.
    data_dir: Path = Path("airlock-data")
    # The policy file (TOML; see deploy/policy.example.toml). Without one, the default policy
    # applies: block any finding at medium severity or above, and custom code.
    policy: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    # Hosts (globs) that upstream may redirect file downloads to, besides its own host. The Hub
    # uses cdn-lfs*.hf.co, cas-bridge.xethub.hf.co and *.cdn.hf.co. Comma-separated in the env.
    upstream_cdn_hosts: tuple[str, ...] = ("hf.co", "*.hf.co", "huggingface.co", "*.huggingface.co")
    # Used upstream for callers who send no token of their own. Never logged, never stored.
    upstream_token: str | None = None
    # The URL clients use to reach Airlock, for absolute links (tree pagination). Default: from
    # the request's Host header.
    public_url: str | None = None
    # How long a branch or tag stays resolved to the same commit before upstream is asked again.
    revision_ttl_s: float = 60.0
    # How long upstream's "this token may read this repo" answer is trusted for restricted repos.
    access_ttl_s: float = 300.0
    # How long a HEAD waits for a held (not yet scanned) file before answering 503 + Retry-After.
    head_wait_s: float = 5.0
    upstream_connect_timeout_s: float = 10.0
    # A stalled upstream body is abandoned (and resumed with a Range request) after this long.
    upstream_read_timeout_s: float = 30.0
    # How many times a cut or stalled upstream body is resumed before the fetch fails.
    upstream_retries: int = 4
    # After a fetch fails (bad bytes, upstream errors), requests for the same blob get that
    # error for this long instead of a new fetch: the client's own retries then see the reason.
    failure_cooldown_s: float = 30.0
    # Upper bound for a single file. Larger files are refused before any byte is fetched.
    max_file_size_bytes: int = 100 * 1024**3
    # Largest request header line/field Airlock accepts; larger requests get 431/400.
    max_header_bytes: int = 8190
    # Scans run in worker processes, each under a memory limit (address space) and a hard time
    # limit; a scan that exceeds either, or crashes its worker, blocks the file.
    scan_workers: int = 2
    scan_memory_bytes: int = 2 * 1024**3
    scan_time_limit_s: float = 300.0
    log_level: str = "info"
    # Events (a blob quarantined, a review action) are POSTed as JSON to this http(s) URL.
    # None: no webhook. The URL is never logged (it may embed a token); only its host is.
    webhook_url: str | None = None
    # When set, each POST carries X-Airlock-Signature: sha256=<hex HMAC-SHA256 of the body>.
    webhook_secret: str | None = None
    # How many times a failed delivery (connection error, timeout, 5xx, 429) is retried.
    webhook_retries: int = 5
    # Review UI and admin API accounts. Users: "name:<password hash>" (`airlock admin
    # hash-password` makes one); tokens, for API clients: "name:<sha256 hex of the token>".
    admin_users: tuple[str, ...] = ()
    admin_tokens: tuple[str, ...] = ()
    # How long a review UI login lasts.
    session_ttl_s: float = 8 * 3600

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError("AIRLOCK_UPSTREAM", f"must be an http(s) URL, got {self.upstream!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ConfigError("AIRLOCK_UPSTREAM", "must be an origin without path or query")
        if self.public_url is not None and urlsplit(self.public_url).scheme not in (
            "http",
            "https",
        ):
            raise ConfigError("AIRLOCK_PUBLIC_URL", f"must be an http(s) URL: {self.public_url!r}")
        if not 0 < self.port < 65536:
            raise ConfigError("AIRLOCK_PORT", f"must be between 1 and 65535, got {self.port}")
        for name in (
            "revision_ttl_s",
            "access_ttl_s",
            "head_wait_s",
            "upstream_connect_timeout_s",
            "upstream_read_timeout_s",
            "failure_cooldown_s",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(ENV_PREFIX + name.upper(), "must not be negative")
        if self.scan_workers < 1:
            raise ConfigError("AIRLOCK_SCAN_WORKERS", "must be at least 1")
        if self.scan_memory_bytes < 256 * 1024**2:
            raise ConfigError("AIRLOCK_SCAN_MEMORY_BYTES", "must be at least 256 MiB")
        if self.scan_time_limit_s <= 0:
            raise ConfigError("AIRLOCK_SCAN_TIME_LIMIT_S", "must be positive")
        if self.upstream_retries < 0 or self.max_file_size_bytes <= 0:
            raise ConfigError("AIRLOCK_UPSTREAM_RETRIES", "must not be negative")
        if self.webhook_url is not None and not _is_http_url(self.webhook_url):
            # The value itself is not echoed: a webhook URL may carry a token.
            raise ConfigError("AIRLOCK_WEBHOOK_URL", "must be an http(s) URL with a host")
        if self.webhook_retries < 0:
            raise ConfigError("AIRLOCK_WEBHOOK_RETRIES", "must not be negative")
        if self.log_level.lower() not in ("debug", "info", "warning", "error"):
            raise ConfigError("AIRLOCK_LOG_LEVEL", "must be debug, info, warning or error")
        _check_accounts("AIRLOCK_ADMIN_USERS", self.admin_users)
        _check_accounts("AIRLOCK_ADMIN_TOKENS", self.admin_tokens)
        for entry in self.admin_tokens:
            digest = entry.partition(":")[2]
            if len(digest) != 64 or digest.strip("0123456789abcdef"):
                raise ConfigError(
                    "AIRLOCK_ADMIN_TOKENS", "needs the token's sha256 as 64 lowercase hex digits"
                )
        if self.session_ttl_s <= 0:
            raise ConfigError("AIRLOCK_SESSION_TTL_S", "must be positive")

    @property
    def upstream_origin(self) -> str:
        return self.upstream.rstrip("/")

    @classmethod
    def env_names(cls) -> list[str]:
        return [ENV_PREFIX + f.name.upper() for f in fields(cls)]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from `AIRLOCK_*` variables; non-None `overrides` (CLI flags) win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False


def _coerce(name: str, type_name: object, raw: str) -> object:
    var = ENV_PREFIX + name.upper()
    text = str(type_name)
    try:
        if "tuple" in text:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if "Path" in text:
            return Path(raw)
        if text.startswith("int"):
            return int(raw)
        if text.startswith("float"):
            return float(raw)
    except ValueError:
        raise ConfigError(var, f"is not a valid number: {raw!r}") from None
    return raw


def _check_accounts(variable: str, entries: tuple[str, ...]) -> None:
    """Each entry is "name:secret"; names are unique. The secret's own format is checked where
    it is used (proxy.admin.auth), which knows it."""
    names: set[str] = set()
    for entry in entries:
        name, colon, secret = entry.partition(":")
        if not colon or not secret or not _ACCOUNT_NAME_RE.fullmatch(name):
            raise ConfigError(
                variable, 'entries must look like "name:secret" (name: A-Z a-z 0-9 . _ @ -)'
            )
        if name in names:
            raise ConfigError(variable, f"names {name!r} twice")
        names.add(name)
