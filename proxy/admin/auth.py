"""Who may review: admin accounts from the settings, sessions for the web UI, tokens for the API.

- Passwords are stored as scrypt hashes (`scrypt$n$r$p$salt$hash`, base64 parts), made by
  `hash_password` (`airlock admin hash-password`). Only the hash is ever configured.
- API clients send `Authorization: Bearer <token>`; the settings hold the token's sha256.
- A web session is a cookie signed with HMAC-SHA256 under a random key in `data_dir/session.key`
  (mode 0600, created on first use). It carries the user, the expiry, a session id (so that
  logging out revokes it) and the session's CSRF token. Changing a user's password hash ends
  that user's sessions, and so does removing the user.
- Every POST under /ui/ must echo the CSRF token in a form field, and a present `Origin` header
  must name this server (OWASP CSRF Prevention Cheat Sheet: synchronizer token + origin check).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from proxy.auth import install_key
from proxy.errors import ConfigError
from proxy.settings import Settings

SESSION_COOKIE = "airlock_session"
LOGIN_COOKIE = "airlock_login"
COOKIE_PATH = "/ui"
KEY_FILE = "session.key"

# scrypt cost for new hashes: 32 MiB of memory and 0.1-0.2 s of one core per guess (RFC 7914).
# OWASP's Password Storage Cheat Sheet suggests N=2^17 (128 MiB); a quarter of that keeps logins
# cheap on a small review server, and verify_password reads the cost from each stored hash, so
# stronger hashes can be configured without a code change.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
# Bounds for configured hashes, so that a config value cannot make each login take a gigabyte.
_MAX_SCRYPT_MEMORY_BYTES = 256 * 1024**2
_MIN_SCRYPT_N = 2**14


@dataclass(frozen=True)
class ScryptHash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, text: str) -> ScryptHash:
        """Parse `scrypt$n$r$p$salt_b64$hash_b64`; ValueError says what is wrong."""
        parts = text.split("$")
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError("a password hash looks like scrypt$n$r$p$salt$hash")
        try:
            n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt = base64.b64decode(parts[4], validate=True)
            digest = base64.b64decode(parts[5], validate=True)
        except (ValueError, binascii.Error):
            raise ValueError("a password hash has non-numeric costs or bad base64") from None
        if n < _MIN_SCRYPT_N or n & (n - 1) or not 1 <= r <= 32 or not 1 <= p <= 16:
            raise ValueError(f"scrypt costs out of range (n a power of 2 >= {_MIN_SCRYPT_N})")
        if _scrypt_memory_bytes(n, r, p) > _MAX_SCRYPT_MEMORY_BYTES:
            raise ValueError("scrypt costs would need more than 256 MiB per login")
        if len(salt) < 8 or len(digest) < 16:
            raise ValueError("the salt or hash in a password hash is too short")
        return cls(n, r, p, salt, digest)

    def derive(self, password: str) -> bytes:
        return _scrypt(password, self.salt, self.n, self.r, self.p, len(self.digest))

    def __str__(self) -> str:
        salt = base64.b64encode(self.salt).decode()
        digest = base64.b64encode(self.digest).decode()
        return f"scrypt${self.n}${self.r}${self.p}${salt}${digest}"


def _scrypt_memory_bytes(n: int, r: int, p: int) -> int:
    return 128 * r * (n + p + 2)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=_scrypt_memory_bytes(n, r, p) + 1024**2,
        dklen=length,
    )


def hash_password(password: str) -> str:
    """A new self-describing scrypt hash of `password`, for AIRLOCK_ADMIN_USERS."""
    if not password:
        raise ValueError("a password must not be empty")
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, HASH_BYTES)
    return str(ScryptHash(SCRYPT_N, SCRYPT_R, SCRYPT_P, salt, digest))


def verify_password(stored: str, password: str) -> bool:
    """Whether `password` matches `stored`; compares in constant time. A malformed `stored`
    never matches."""
    try:
        parsed = ScryptHash.parse(stored)
    except ValueError:
        return False
    return hmac.compare_digest(parsed.derive(password), parsed.digest)


def hash_token(token: str) -> str:
    """The sha256 hex of an API token, as AIRLOCK_ADMIN_TOKENS holds it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh random API token (show it once; configure its `hash_token`)."""
    return "airlock_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Session:
    username: str
    csrf: str
    session_id: str
    expires_at: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class AdminAuth:
    """Accounts, API tokens and signed sessions. Built once at start-up from the settings."""

    def __init__(
        self,
        *,
        users: Mapping[str, str],
        token_sha256: Mapping[str, str],
        data_dir: Path,
        session_ttl_s: float,
        secure_cookies: bool,
        public_url: str | None = None,
    ) -> None:
        self._users: dict[str, ScryptHash] = {}
        for name, stored in users.items():
            try:
                self._users[name] = ScryptHash.parse(stored)
            except ValueError as err:
                raise ConfigError("AIRLOCK_ADMIN_USERS", f"entry {name!r}: {err}") from None
        self._tokens: list[tuple[str, bytes]] = []
        for name, digest_hex in token_sha256.items():
            try:
                digest = bytes.fromhex(digest_hex)
            except ValueError:
                digest = b""
            if len(digest) != hashlib.sha256().digest_size:
                raise ConfigError("AIRLOCK_ADMIN_TOKENS", f"entry {name!r} is not a sha256 hex")
            self._tokens.append((name, digest))
        self._data_dir = data_dir
        self._key: bytes | None = None
        self.session_ttl_s = session_ttl_s
        self.secure_cookies = secure_cookies
        self._public_origin = _origin(public_url) if public_url else None
        # Logged-out session ids, until their cookies would have expired anyway.
        self._revoked: dict[str, float] = {}
        # A constant-cost stand-in for unknown users, so that timing does not reveal names.
        self._dummy = ScryptHash(SCRYPT_N, SCRYPT_R, SCRYPT_P, b"\0" * SALT_BYTES, b"\0" * 32)

    @classmethod
    def from_settings(cls, settings: Settings) -> AdminAuth:
        public_url = settings.public_url
        return cls(
            users=_entries(settings.admin_users, "AIRLOCK_ADMIN_USERS"),
            token_sha256=_entries(settings.admin_tokens, "AIRLOCK_ADMIN_TOKENS"),
            data_dir=settings.data_dir,
            session_ttl_s=settings.session_ttl_s,
            secure_cookies=bool(public_url) and urlsplit(public_url or "").scheme == "https",
            public_url=public_url,
        )

    @property
    def key(self) -> bytes:
        if self._key is None:
            self._key = install_key(self._data_dir, KEY_FILE)
        return self._key

    @property
    def usernames(self) -> list[str]:
        return sorted(self._users)

    # API clients

    def bearer(self, request: web.Request) -> str | None:
        """The admin token's name for `Authorization: Bearer <token>`, else None."""
        scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        digest = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        found: str | None = None
        for name, expected in self._tokens:  # no early exit: every entry is compared
            if hmac.compare_digest(digest, expected) and found is None:
                found = name
        return found

    # Web sessions

    def login(self, username: str, password: str) -> str | None:
        """A signed session cookie value for a correct username and password, else None.
        Takes one scrypt computation either way (run it off the event loop)."""
        stored = self._users.get(username)
        checked = stored or self._dummy
        matched = hmac.compare_digest(checked.derive(password), checked.digest)
        if stored is None or not matched:
            return None
        return self._sign_session(username)

    def _sign_session(self, username: str, *, now: float | None = None) -> str:
        expires_at = (time.time() if now is None else now) + self.session_ttl_s
        payload = {
            "u": username,
            "e": round(expires_at, 3),
            "s": secrets.token_urlsafe(16),
            "c": secrets.token_urlsafe(32),
            "h": self._account_tag(username),
        }
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{body}.{self._sign('session', body)}"

    def _sign(self, purpose: str, body: str) -> str:
        mac = hmac.new(self.key, f"{purpose}\n{body}".encode(), hashlib.sha256)
        return _b64(mac.digest())

    def _account_tag(self, username: str) -> str:
        """Binds a session to the account's current password hash."""
        stored = self._users.get(username)
        material = str(stored).encode() if stored else b""
        return _b64(hmac.new(self.key, b"account\n" + material, hashlib.sha256).digest()[:12])

    def session(self, request: web.Request) -> Session | None:
        """The valid session the request's cookie carries, else None."""
        return self.session_from_cookie(request.cookies.get(SESSION_COOKIE))

    def session_from_cookie(self, value: str | None, *, now: float | None = None) -> Session | None:
        if not value or len(value) > 4096:
            return None
        body, dot, signature = value.partition(".")
        if not dot or not hmac.compare_digest(
            signature.encode(), self._sign("session", body).encode()
        ):
            return None
        try:
            payload = json.loads(_unb64(body))
            username, expires_at = str(payload["u"]), float(payload["e"])
            session_id, csrf, tag = str(payload["s"]), str(payload["c"]), str(payload["h"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        if (time.time() if now is None else now) >= expires_at:
            return None
        if username not in self._users or not hmac.compare_digest(tag, self._account_tag(username)):
            return None
        if session_id in self._revoked:
            return None
        return Session(username, csrf, session_id, expires_at)

    def set_session_cookie(self, response: web.StreamResponse, value: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            value,
            max_age=int(self.session_ttl_s),
            path=COOKIE_PATH,
            httponly=True,
            samesite="Strict",
            secure=self.secure_cookies,
        )

    def logout(self, session: Session, response: web.StreamResponse) -> None:
        """Revoke the session server-side and clear its cookie."""
        now = time.time()
        self._revoked = {sid: until for sid, until in self._revoked.items() if until > now}
        self._revoked[session.session_id] = session.expires_at
        response.del_cookie(SESSION_COOKIE, path=COOKIE_PATH)

    # The login form has no session yet: a signed nonce in a cookie, echoed by the form
    # (double submit), keeps other sites from logging a reviewer in as someone else.

    def login_nonce(self, request: web.Request) -> str:
        """The login form's nonce: the one in the request's valid login cookie, or a new one."""
        current = self._login_nonce_from_cookie(request.cookies.get(LOGIN_COOKIE))
        return current or secrets.token_urlsafe(24)

    def set_login_cookie(self, response: web.StreamResponse, nonce: str) -> None:
        response.set_cookie(
            LOGIN_COOKIE,
            f"{nonce}.{self._sign('login', nonce)}",
            path=COOKIE_PATH,
            httponly=True,
            samesite="Strict",
            secure=self.secure_cookies,
        )

    def _login_nonce_from_cookie(self, value: str | None) -> str | None:
        if not value or len(value) > 512:
            return None
        nonce, dot, signature = value.rpartition(".")
        if not dot or not hmac.compare_digest(
            signature.encode(), self._sign("login", nonce).encode()
        ):
            return None
        return nonce

    def login_csrf_ok(self, request: web.Request, submitted: str) -> bool:
        nonce = self._login_nonce_from_cookie(request.cookies.get(LOGIN_COOKIE))
        return (
            nonce is not None
            and hmac.compare_digest(nonce.encode(), submitted.encode())
            and self.origin_ok(request)
        )

    # CSRF

    def csrf_ok(self, request: web.Request, session: Session, submitted: str) -> bool:
        """The form's `csrf` field equals the session's token, and the Origin (if sent) is us."""
        token_ok = hmac.compare_digest(session.csrf.encode(), submitted.encode())
        return token_ok and self.origin_ok(request)

    def origin_ok(self, request: web.Request) -> bool:
        """No Origin header (old clients, some same-origin requests), or one naming this server:
        the configured public URL's origin, or the Host the request was sent to."""
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is None:
            return True
        if self._public_origin is not None and _origin(origin) == self._public_origin:
            return True
        try:
            netloc = urlsplit(origin).netloc.lower()
        except ValueError:
            return False
        return bool(netloc) and netloc == request.host.lower()


ADMIN_AUTH = web.AppKey("admin_auth", AdminAuth)


def setup_auth(app: web.Application) -> AdminAuth:
    """The app's AdminAuth, built from its settings on the first call (at start-up, before the
    app is frozen: the review UI and the admin API both call this while registering routes)."""
    # Imported here: proxy.context pulls in the whole pipeline, which `hash_password`'s CLI
    # command does not need.
    from proxy.context import SERVICES

    auth = app.get(ADMIN_AUTH)
    if auth is None:
        auth = AdminAuth.from_settings(app[SERVICES].settings)
        app[ADMIN_AUTH] = auth
    return auth


class LoginThrottle:
    """At most `limit` failed logins per client address in `window_s`; then refuse logins from
    it until the window passes (slows password guessing beyond what scrypt does)."""

    def __init__(self, *, limit: int = 10, window_s: float = 300.0, max_clients: int = 10_000):
        self.limit = limit
        self.window_s = window_s
        self.max_clients = max_clients
        self._failures: dict[str, list[float]] = {}

    def _recent(self, client: str, now: float) -> list[float]:
        recent = [t for t in self._failures.get(client, []) if now - t < self.window_s]
        if recent:
            self._failures[client] = recent
        else:
            self._failures.pop(client, None)
        return recent

    def blocked(self, client: str, *, now: float | None = None) -> bool:
        return len(self._recent(client, time.monotonic() if now is None else now)) >= self.limit

    def failed(self, client: str, *, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self._failures) >= self.max_clients:  # bound memory: forget stale addresses
            for other in list(self._failures):
                self._recent(other, now)
        recent = self._recent(client, now)
        recent.append(now)
        self._failures[client] = recent[-self.limit :]

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


def _origin(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc.lower()}"


def _entries(entries: tuple[str, ...], variable: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for entry in entries:
        name, colon, secret = entry.partition(":")
        if not colon or not name or not secret or name in result:
            raise ConfigError(variable, 'entries must look like "name:secret", names unique')
        result[name] = secret
    return result
