"""Who is asking: the caller's upstream credentials, and a fingerprint that stands for them.

Airlock never stores or logs a token. Where it must remember something about a token (the
upstream confirmation that this token may read a restricted repo, the audit log), it uses a keyed
fingerprint: HMAC-SHA256 under a secret that lives only in the data directory.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from proxy.errors import ConfigError
from proxy.hub import RepoRef

FINGERPRINT_HEX_CHARS = 16


@dataclass(frozen=True)
class Caller:
    # The Authorization header value Airlock sends upstream on the caller's behalf: the caller's
    # own, or the configured AIRLOCK_UPSTREAM_TOKEN for callers who send none.
    authorization: str | None
    token_fp: str | None
    uses_own_token: bool

    @property
    def anonymous_upstream(self) -> bool:
        """Upstream sees no credentials at all, so a success proves the content is public."""
        return self.authorization is None


KEY_BYTES = 32


def install_key(data_dir: Path, name: str) -> bytes:
    """A secret key of this install, kept in `data_dir/name` (mode 0600, created on first
    use). A damaged (short) key file stops start-up rather than weakening the key."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) < KEY_BYTES:
            raise ConfigError("AIRLOCK_DATA_DIR", f"holds a damaged {name}") from None
        return key
    key = secrets.token_bytes(KEY_BYTES)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


class Fingerprinter:
    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_data_dir(cls, data_dir: Path) -> Fingerprinter:
        """Load the install's fingerprint key, creating it on first start."""
        return cls(install_key(data_dir, "fingerprint.key"))

    def fingerprint(self, authorization: str) -> str:
        digest = hmac.new(self._key, authorization.encode("utf-8", "replace"), hashlib.sha256)
        return digest.hexdigest()[:FINGERPRINT_HEX_CHARS]

    def caller(self, client_authorization: str | None, upstream_token: str | None) -> Caller:
        if client_authorization:
            return Caller(client_authorization, self.fingerprint(client_authorization), True)
        if upstream_token:
            authorization = f"Bearer {upstream_token}"
            return Caller(authorization, self.fingerprint(authorization), False)
        return Caller(None, None, False)


class AccessConfirmations:
    """Upstream's recent "yes, this token may read this repo's files", kept briefly in memory."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._until: dict[tuple[RepoRef, str | None], float] = {}

    def confirmed(self, repo: RepoRef, caller: Caller) -> bool:
        until = self._until.get((repo, caller.token_fp))
        return until is not None and until > time.monotonic()

    def confirm(self, repo: RepoRef, caller: Caller) -> None:
        if len(self._until) > 100_000:  # bound memory: drop expired entries
            now = time.monotonic()
            self._until = {k: v for k, v in self._until.items() if v > now}
        self._until[(repo, caller.token_fp)] = time.monotonic() + self.ttl_s
