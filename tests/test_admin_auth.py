"""Admin authentication: password hashes, account config, signed sessions, CSRF checks and API
bearer tokens (proxy/admin/auth.py).

References: RFC 7914 (scrypt); OWASP Password Storage, Session Management and CSRF Prevention
Cheat Sheets, which these checks follow."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import time
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from proxy.admin.auth import (
    KEY_FILE,
    SESSION_COOKIE,
    AdminAuth,
    LoginThrottle,
    ScryptHash,
    hash_password,
    hash_token,
    new_token,
    verify_password,
)
from proxy.errors import ConfigError
from proxy.settings import Settings

PASSWORD = "s3cret pass phrase"
TOKEN = "airlock_unit_test_token"


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password(PASSWORD)


def make_auth(
    data_dir: Path, stored: str, *, public_url: str | None = None, ttl_s: float = 3600
) -> AdminAuth:
    return AdminAuth.from_settings(
        Settings(
            data_dir=data_dir,
            admin_users=(f"alice:{stored}",),
            admin_tokens=(f"ci:{hash_token(TOKEN)}", f"other:{hash_token('other-token')}"),
            session_ttl_s=ttl_s,
            public_url=public_url,
        )
    )


def request(headers: dict[str, str] | None = None, cookie: str | None = None) -> web.Request:
    sent = {"Host": "airlock.test:8080", **(headers or {})}
    if cookie is not None:
        sent["Cookie"] = f"{SESSION_COOKIE}={cookie}"
    return make_mocked_request("POST", "/ui/decisions/1/approve", headers=sent)


# Password hashes


def test_a_password_hash_is_self_describing_salted_scrypt(stored: str) -> None:
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", 2**15, 8, 1)
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(digest)) == 32
    assert PASSWORD not in stored
    assert hash_password(PASSWORD) != stored  # a fresh salt each time
    expected = hashlib.scrypt(
        PASSWORD.encode(),
        salt=base64.b64decode(salt),
        n=2**15,
        r=8,
        p=1,
        maxmem=64 * 1024**2,
        dklen=32,
    )
    assert base64.b64decode(digest) == expected


def test_verify_password(stored: str) -> None:
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD + " ")
    assert not verify_password(stored, "")
    assert not verify_password(stored, PASSWORD.upper())


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "plain-text-password",
        "bcrypt$12$abc",
        "scrypt$16384$8$1$not base64!$AAAA",
        "scrypt$x$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        # n not a power of two, n too small, memory beyond the cap (DoS through config)
        "scrypt$16385$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$16$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$1048576$16$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "scrypt$16384$8$1$AAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  # 3-byte salt
    ],
)
def test_a_malformed_hash_never_verifies_and_is_refused_at_start_up(
    bad: str, tmp_path: Path
) -> None:
    assert not verify_password(bad, PASSWORD)
    with pytest.raises(ValueError):
        ScryptHash.parse(bad)
    if bad:
        with pytest.raises(ConfigError) as error:
            AdminAuth.from_settings(Settings(data_dir=tmp_path, admin_users=(f"alice:{bad}",)))
        assert error.value.variable == "AIRLOCK_ADMIN_USERS"
        assert "alice" in str(error.value)


def test_an_empty_password_cannot_be_hashed() -> None:
    with pytest.raises(ValueError):
        hash_password("")


def test_hash_token_is_the_sha256_hex() -> None:
    assert hash_token(TOKEN) == hashlib.sha256(TOKEN.encode()).hexdigest()
    assert new_token() != new_token()
    assert len(new_token()) > 40


# Account settings


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"AIRLOCK_ADMIN_USERS": "alice"}, "AIRLOCK_ADMIN_USERS"),
        ({"AIRLOCK_ADMIN_USERS": ":scrypt$1"}, "AIRLOCK_ADMIN_USERS"),
        ({"AIRLOCK_ADMIN_USERS": "alice:"}, "AIRLOCK_ADMIN_USERS"),
        ({"AIRLOCK_ADMIN_USERS": "al ice:scrypt$1"}, "AIRLOCK_ADMIN_USERS"),
        ({"AIRLOCK_ADMIN_USERS": "a:x,a:y"}, "AIRLOCK_ADMIN_USERS"),
        ({"AIRLOCK_ADMIN_TOKENS": "ci:abc"}, "AIRLOCK_ADMIN_TOKENS"),
        ({"AIRLOCK_ADMIN_TOKENS": "ci:" + "G" * 64}, "AIRLOCK_ADMIN_TOKENS"),
        ({"AIRLOCK_ADMIN_TOKENS": hashlib.sha256(b"x").hexdigest()}, "AIRLOCK_ADMIN_TOKENS"),
        ({"AIRLOCK_SESSION_TTL_S": "0"}, "AIRLOCK_SESSION_TTL_S"),
        ({"AIRLOCK_SESSION_TTL_S": "soon"}, "AIRLOCK_SESSION_TTL_S"),
    ],
)
def test_malformed_account_settings_name_the_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env(env)
    assert error.value.variable == variable


def test_account_settings_from_the_environment(stored: str, tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "AIRLOCK_DATA_DIR": str(tmp_path),
            "AIRLOCK_ADMIN_USERS": f"alice:{stored}, bob:{hash_password('b')}",
            "AIRLOCK_ADMIN_TOKENS": f"ci:{hash_token(TOKEN)}",
            "AIRLOCK_SESSION_TTL_S": "600",
        }
    )
    auth = AdminAuth.from_settings(settings)
    assert auth.usernames == ["alice", "bob"]
    assert auth.session_ttl_s == 600
    assert auth.bearer(request({"Authorization": f"Bearer {TOKEN}"})) == "ci"
    assert not (tmp_path / KEY_FILE).exists()  # the session key is made on first use


# API bearer tokens


@pytest.mark.parametrize(
    "header, principal",
    [
        (f"Bearer {TOKEN}", "ci"),
        (f"bearer {TOKEN}", "ci"),
        ("Bearer other-token", "other"),
        (f"Bearer {TOKEN}x", None),
        (f"Bearer {hash_token(TOKEN)}", None),  # the configured digest is not the token
        (f"Basic {TOKEN}", None),
        ("Bearer ", None),
        ("", None),
    ],
)
def test_bearer_tokens(tmp_path: Path, stored: str, header: str, principal: str | None) -> None:
    auth = make_auth(tmp_path, stored)
    headers = {"Authorization": header} if header else {}
    assert auth.bearer(request(headers)) == principal


# Sessions


def test_login_gives_a_session_with_a_csrf_token(tmp_path: Path, stored: str) -> None:
    auth = make_auth(tmp_path, stored)
    assert auth.login("alice", "wrong") is None
    assert auth.login("mallory", PASSWORD) is None
    cookie = auth.login("alice", PASSWORD)
    assert cookie is not None
    session = auth.session(request(cookie=cookie))
    assert session is not None
    assert session.username == "alice"
    assert len(session.csrf) >= 32
    assert time.time() + 3590 < session.expires_at <= time.time() + 3600
    other = auth.login("alice", PASSWORD)
    assert other is not None
    second = auth.session(request(cookie=other))
    assert second is not None and second.csrf != session.csrf  # one token per session


def test_the_session_key_is_private_and_kept(tmp_path: Path, stored: str) -> None:
    cookie = make_auth(tmp_path, stored).login("alice", PASSWORD)
    key = tmp_path / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key.read_bytes()) == 32
    restarted = make_auth(tmp_path, stored)  # sessions survive a restart
    assert restarted.session(request(cookie=cookie)) is not None
    elsewhere = make_auth(tmp_path / "other", stored)  # another install's key
    assert elsewhere.session(request(cookie=cookie)) is None


def test_a_damaged_session_key_stops_start_up(tmp_path: Path, stored: str) -> None:
    (tmp_path / KEY_FILE).write_bytes(b"short")
    with pytest.raises(ConfigError):
        make_auth(tmp_path, stored).login("alice", PASSWORD)


def test_sessions_expire(tmp_path: Path, stored: str) -> None:
    auth = make_auth(tmp_path, stored, ttl_s=60)
    cookie = auth.login("alice", PASSWORD)
    assert cookie is not None
    assert auth.session_from_cookie(cookie, now=time.time() + 59) is not None
    assert auth.session_from_cookie(cookie, now=time.time() + 61) is None


def _reencode(cookie: str, **changes: object) -> str:
    body, _, signature = cookie.partition(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode() + "." + signature


def test_tampered_sessions_are_refused(tmp_path: Path, stored: str) -> None:
    auth = make_auth(tmp_path, stored)
    auth2 = make_auth(tmp_path, stored)
    cookie = auth.login("alice", PASSWORD)
    assert cookie is not None
    body, _, signature = cookie.partition(".")
    forged = [
        _reencode(cookie, u="bob"),
        _reencode(cookie, e=time.time() + 10**9),  # extend the expiry
        _reencode(cookie, c="attacker-known-csrf"),
        body + "." + signature[:-2] + ("AA" if not signature.endswith("AA") else "BB"),
        body,
        "." + signature,
        body + "." + signature + "x",
        "garbage",
        "",
        "x" * 10_000,
    ]
    for value in forged:
        assert auth2.session(request(cookie=value)) is None, value
    assert auth2.session(request(cookie=cookie)) is not None


def test_a_changed_password_or_removed_user_ends_sessions(tmp_path: Path, stored: str) -> None:
    cookie = make_auth(tmp_path, stored).login("alice", PASSWORD)
    assert make_auth(tmp_path, hash_password("new password")).session_from_cookie(cookie) is None
    nobody = AdminAuth.from_settings(Settings(data_dir=tmp_path, admin_users=(f"bob:{stored}",)))
    assert nobody.session_from_cookie(cookie) is None


def test_logout_revokes_the_session(tmp_path: Path, stored: str) -> None:
    auth = make_auth(tmp_path, stored)
    cookie, other = auth.login("alice", PASSWORD), auth.login("alice", PASSWORD)
    session = auth.session_from_cookie(cookie)
    assert session is not None
    response = web.Response()
    auth.logout(session, response)
    assert auth.session_from_cookie(cookie) is None
    assert auth.session_from_cookie(other) is not None  # other sessions stay
    morsel = response.cookies[SESSION_COOKIE]
    assert morsel.value == "" and morsel["path"] == "/ui"


@pytest.mark.parametrize(
    "public_url, secure",
    [(None, False), ("http://airlock.test", False), ("https://airlock.example", True)],
)
def test_session_cookie_flags(
    tmp_path: Path, stored: str, public_url: str | None, secure: bool
) -> None:
    auth = make_auth(tmp_path, stored, public_url=public_url)
    response = web.Response()
    auth.set_session_cookie(response, "value")
    morsel = response.cookies[SESSION_COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Strict"
    assert morsel["path"] == "/ui"
    assert bool(morsel["secure"]) is secure
    assert morsel["max-age"] == "3600"


# CSRF


@pytest.mark.parametrize(
    "origin, public_url, accepted",
    [
        (None, None, True),  # no Origin header (same-origin form posts by some browsers)
        ("http://airlock.test:8080", None, True),  # the Host the request came to
        ("http://AIRLOCK.test:8080", None, True),
        ("https://airlock.example", "https://airlock.example", True),  # behind a TLS proxy
        ("http://airlock.test", None, False),  # another port is another origin
        ("https://evil.example", None, False),
        ("https://evil.example", "https://airlock.example", False),
        ("null", None, False),  # sandboxed frames, data: URLs
        ("", None, False),
    ],
)
def test_csrf_needs_the_token_and_our_origin(
    tmp_path: Path, stored: str, origin: str | None, public_url: str | None, accepted: bool
) -> None:
    auth = make_auth(tmp_path, stored, public_url=public_url)
    cookie = auth.login("alice", PASSWORD)
    headers = {} if origin is None else {"Origin": origin}
    req = request(headers, cookie=cookie)
    session = auth.session(req)
    assert session is not None
    assert auth.csrf_ok(req, session, session.csrf) is accepted
    assert not auth.csrf_ok(req, session, "")
    assert not auth.csrf_ok(req, session, session.csrf[:-1])
    assert not auth.csrf_ok(req, session, session.csrf + "x")


def test_the_login_form_nonce_is_a_signed_double_submit(tmp_path: Path, stored: str) -> None:
    auth = make_auth(tmp_path, stored)
    nonce = auth.login_nonce(make_mocked_request("GET", "/ui/login"))
    response = web.Response()
    auth.set_login_cookie(response, nonce)
    cookie = response.cookies["airlock_login"].value
    req = make_mocked_request("POST", "/ui/login", headers={"Cookie": f"airlock_login={cookie}"})
    assert auth.login_csrf_ok(req, nonce)
    assert not auth.login_csrf_ok(req, nonce + "x")
    unsigned = make_mocked_request(
        "POST", "/ui/login", headers={"Cookie": f"airlock_login={nonce}.forged"}
    )
    assert not auth.login_csrf_ok(unsigned, nonce)
    assert not auth.login_csrf_ok(make_mocked_request("POST", "/ui/login"), nonce)


def test_login_throttle() -> None:
    throttle = LoginThrottle(limit=3, window_s=60)
    for i in range(3):
        assert not throttle.blocked("10.0.0.1", now=100 + i)
        throttle.failed("10.0.0.1", now=100 + i)
    assert throttle.blocked("10.0.0.1", now=103)
    assert not throttle.blocked("10.0.0.2", now=103)
    assert not throttle.blocked("10.0.0.1", now=161)  # the window passed
    throttle.failed("10.0.0.3", now=0)
    throttle.succeeded("10.0.0.3")
    assert not throttle.blocked("10.0.0.3", now=1)


def test_login_throttle_memory_is_bounded() -> None:
    throttle = LoginThrottle(limit=3, window_s=60, max_clients=100)
    for i in range(1000):
        throttle.failed(f"10.0.{i // 256}.{i % 256}", now=float(i))
    assert len(throttle._failures) <= 100 + 60
